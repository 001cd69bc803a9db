/**
 * Many connections on one listener, and the listener's connection limit.
 */
import { ConnectionRefusedError } from '../../lib/index';
import { connectClient, describeEnd, sha256, startServer, useResources, within, type Client } from './helpers';

jest.setTimeout(30_000);

const resources = useResources();

const CONNECTIONS = 100;
const PER_CONNECTION = 5;

function messageFor(client: number, i: number): Buffer {
  // Distinct per connection and per message, of varied sizes (one to several packets).
  return Buffer.alloc(1 + ((client * 7 + i * 1031) % 5000), `${client}:${i};`);
}

test('100 concurrent connections to one listener each get their 5 messages echoed back', async () => {
  const server = await startServer(resources, {}, (inbox) => {
    // Echo, and close normally once the starter closes (send$ completed there).
    inbox.conn.messages$.subscribe({ next: (m) => inbox.conn.send$.next(m), error: () => {} });
  });

  const clients: Client[] = await within(
    Promise.all(Array.from({ length: CONNECTIONS }, () => connectClient(resources, server.port))),
    10_000,
    `${CONNECTIONS} connections opening`,
  );
  expect(server.accepted).toHaveLength(CONNECTIONS);

  clients.forEach((client, c) => {
    for (let i = 0; i < PER_CONNECTION; i++) client.conn.send$.next(messageFor(c, i));
  });
  await within(
    Promise.all(clients.map((client, c) => client.inbox.waitFor(PER_CONNECTION, 15_000, `echoes on connection #${c}`))),
    20_000,
    'all echoes',
  );
  clients.forEach((client, c) => {
    expect(client.inbox.messages.map(sha256)).toEqual(Array.from({ length: PER_CONNECTION }, (_, i) => sha256(messageFor(c, i))));
  });

  const ids = new Set(server.accepted.map((s) => s.conn.id));
  expect(ids.size).toBe(CONNECTIONS);
  expect(new Set(clients.map((c) => c.conn.id))).toEqual(ids);
  // Each starter had its own socket, so the listener saw 100 distinct remote ports too.
  expect(new Set(server.accepted.map((s) => s.conn.remote.port)).size).toBe(CONNECTIONS);

  // Done: complete send$ everywhere (flush, then close normally); every inbox completes.
  for (const client of clients) client.conn.send$.complete();
  await within(
    Promise.all([...clients.map((c) => c.inbox.end), ...server.accepted.map((s) => s.end)]),
    10_000,
    'every connection closing',
  );
  for (const client of clients) expect(client.inbox.count).toBe(PER_CONNECTION);
  for (const inbox of server.accepted) expect(inbox.count).toBe(PER_CONNECTION);
  expect(tally(clients.map((c) => describeEnd(c.inbox.ended)))).toEqual({ completed: CONNECTIONS });
  expect(tally(server.accepted.map((s) => describeEnd(s.ended)))).toEqual({ completed: CONNECTIONS });
});

/** How many times each (shortened) description occurs: one readable line when some differ. */
function tally(descriptions: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const d of descriptions) {
    const key = d.replace(/ for [\d.]+ ms/, ' for N ms').slice(0, 100);
    out[key] = (out[key] ?? 0) + 1;
  }
  return out;
}

test('every connect() Observable completes once its connection closed', async () => {
  const server = await startServer(resources, {}, (inbox) => {
    inbox.conn.messages$.subscribe({ next: (m) => inbox.conn.send$.next(m), error: () => {} });
  });
  const clients = await Promise.all(Array.from({ length: 10 }, () => connectClient(resources, server.port)));
  for (const client of clients) {
    client.conn.send$.next(Buffer.from('ping'));
    client.conn.send$.complete();
  }
  const ends = await within(Promise.all(clients.map((c) => c.end)), 5000, 'connect() Observables completing after send$.complete()');
  for (const end of ends) expect(end.kind).toBe('complete');
});

test('maxConnections: 3 refuses the 4th connection with ConnectionRefusedError', async () => {
  const server = await startServer(resources, { maxConnections: 3 });
  const open = await Promise.all([1, 2, 3].map(() => connectClient(resources, server.port)));
  expect(server.accepted).toHaveLength(3);

  const fourth = connectClient(resources, server.port, { connectTimeout: 3000 });
  await expect(within(fourth, 5000, '4th connect() failing')).rejects.toBeInstanceOf(ConnectionRefusedError);
  expect(server.accepted).toHaveLength(3);

  // A slot freed by a close (here by the listener side) can be taken again.
  server.accepted[0]!.conn.close();
  await within(open[0]!.inbox.end, 5000, 'first connection closing at the starter');
  const fifth = await within(connectClient(resources, server.port), 5000, 'connect() after a slot was freed');
  expect(server.accepted).toHaveLength(4);
  expect(server.accepted[3]!.conn.id).toBe(fifth.conn.id);
});
