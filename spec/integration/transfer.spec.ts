/**
 * Bulk transfer over real loopback sockets: many random-size messages both ways at once, one
 * message at the maximum size, acknowledged sends, and DIRECT datagrams.
 */
import { lastValueFrom } from 'rxjs';
import { DEFAULTS, MessageTooLargeError } from '../../lib/index';
import { connectClient, describeEnd, seededBytes, seededRandom, sha256, startServer, useResources, within, type Inbox } from './helpers';

jest.setTimeout(30_000);

/**
 * The two bulk tests take about a second normally, but 10-20 times longer under
 * --detectOpenHandles (jest's async hook records a stack for every datagram sent): they get more room.
 */
const BULK_TIMEOUT_MS = 60_000;

const resources = useResources();

const MIB = 1024 * 1024;
const COUNT = 200;

/** One DATA payload at the default maxDatagramSize (1200 - 18 header bytes). */
const PAYLOAD = DEFAULTS.maxDatagramSize - 18;

/**
 * 200 sizes in 0..1 MiB from `seed`: log-uniform (every scale from a few bytes to 1 MiB is equally
 * represented: single-packet, few-packet and ~900-packet messages), with the extremes and the
 * one-packet boundary included. Uniform sizes would average 512 KiB and make the run ~7 times
 * longer (too slow under --detectOpenHandles, whose async hooks tax every datagram sent).
 */
function sizes(seed: number): number[] {
  const random = seededRandom(seed);
  const out = Array.from({ length: COUNT }, () => Math.min(MIB, Math.floor(2 ** (random() * 20.0001)) - 1));
  out[0] = 0;
  out[1] = PAYLOAD;
  out[2] = PAYLOAD + 1;
  out[COUNT - 2] = MIB;
  out[COUNT - 1] = 1;
  return out;
}

function messages(seed: number): Buffer[] {
  return sizes(seed).map((size, i) => seededBytes(seed, i, size));
}

/** Hashes each message as it arrives (and drops it), so the test does not hold them all twice. */
function hashing(hashes: string[]): { keep: false; onMessage: (m: Uint8Array) => void } {
  return { keep: false, onMessage: (m) => void hashes.push(sha256(m)) };
}

test('200 random-size messages (0..1 MiB) both ways at once: each arrives once, whole, in order', async () => {
  const all = [...sizes(1), ...sizes(2)];
  expect(Math.min(...all)).toBe(0);
  expect(Math.max(...all)).toBe(MIB);
  expect(all.filter((n) => n > 256 * 1024).length).toBeGreaterThan(20);
  const fromClient = messages(1);
  const fromServer = messages(2);
  const expectedAtServer = fromClient.map(sha256);
  const expectedAtClient = fromServer.map(sha256);
  const sizesAtServer: number[] = [];
  const hashesAtServer: string[] = [];
  const hashesAtClient: string[] = [];

  const server = await startServer(
    resources,
    {},
    (inbox) => {
      for (const m of fromServer) inbox.conn.send$.next(m);
    },
    () => ({ keep: false, onMessage: (m) => (hashesAtServer.push(sha256(m)), sizesAtServer.push(m.length)) }),
  );
  const client = await connectClient(resources, server.port, {}, hashing(hashesAtClient));
  for (const m of fromClient) client.conn.send$.next(m);
  const serverSide = await server.nth(1);

  try {
    await Promise.all([
      serverSide.waitFor(COUNT, 50_000, 'server receiving the client messages'),
      client.inbox.waitFor(COUNT, 50_000, 'client receiving the server messages'),
    ]);
  } catch (error) {
    const stats = { client: client.conn.stats, server: serverSide.conn.stats, received: { client: client.inbox.count, server: serverSide.count } };
    throw new Error(`${(error as Error).message}\n${JSON.stringify(stats)}`);
  }
  expect(sizesAtServer).toEqual(fromClient.map((m) => m.length));
  expect(hashesAtServer).toEqual(expectedAtServer);
  expect(hashesAtClient).toEqual(expectedAtClient);

  // Nothing more arrives: wait a little, then close from the listener side (how each side's
  // close() is seen by the other is close.spec's business).
  await new Promise((resolve) => setTimeout(resolve, 100));
  serverSide.conn.close();
  await within(Promise.all([serverSide.end, client.inbox.end]), 5000, 'both sides closing');
  expect(describeEnd(client.inbox.ended)).toBe('completed');
  expect(describeEnd(serverSide.ended)).toBe('completed');
  expect(serverSide.count).toBe(COUNT);
  expect(client.inbox.count).toBe(COUNT);
  expect(hashesAtServer).toHaveLength(COUNT);
  expect(hashesAtClient).toHaveLength(COUNT);
}, BULK_TIMEOUT_MS);

test('one message of maxMessageSize (16 MiB) arrives intact; send() completes once acknowledged', async () => {
  expect(DEFAULTS.maxMessageSize).toBe(16 * MIB);
  const big = seededBytes(3, 0, DEFAULTS.maxMessageSize);
  const server = await startServer(resources);
  const client = await connectClient(resources, server.port);
  const serverSide = await server.nth(1);

  let acked = false;
  const sent = lastValueFrom(client.conn.send(big), { defaultValue: undefined }).then(() => {
    acked = true;
  });
  expect(client.conn.stats.bufferedBytes).toBe(big.length);
  await within(sent, 50_000, 'send() of 16 MiB completing');
  expect(acked).toBe(true);
  expect(client.conn.stats.bufferedBytes).toBe(0);
  expect(client.conn.stats.inFlight).toBe(0);

  await serverSide.waitFor(1, 5000, 'the 16 MiB message');
  const got = serverSide.messages[0]!;
  expect(got.length).toBe(big.length);
  expect(Buffer.compare(Buffer.from(got.buffer, got.byteOffset, got.byteLength), big)).toBe(0);
  expect(serverSide.count).toBe(1);
}, BULK_TIMEOUT_MS);

test('send() of a small message completes after acknowledgement, with nothing left buffered', async () => {
  const server = await startServer(resources);
  const client = await connectClient(resources, server.port);
  const serverSide = await server.nth(1);
  for (let i = 0; i < 3; i++) {
    const m = seededBytes(4, i, 10_000 * i);
    await within(lastValueFrom(client.conn.send(m), { defaultValue: undefined }), 5000, `send() #${i}`);
    expect(client.conn.stats.bufferedBytes).toBe(0);
    // Acknowledged means received: the peer has it (delivery precedes the DATA_ACK).
    expect(serverSide.count).toBe(i + 1);
    expect(sha256(serverSide.messages[i]!)).toBe(sha256(m));
  }
});

test('DIRECT datagrams arrive through direct$; an oversize one throws MessageTooLargeError', async () => {
  const server = await startServer(resources);
  const client = await connectClient(resources, server.port);
  const serverSide: Inbox = await server.nth(1);
  const direct: Uint8Array[] = [];
  let directEnded = false;
  serverSide.conn.direct$.subscribe({ next: (d) => void direct.push(d), complete: () => (directEnded = true) });

  const max = client.conn.maxDirectSize;
  expect(max).toBe(DEFAULTS.maxDatagramSize - 6);
  const sent = [Buffer.alloc(0), Buffer.from('hello direct'), ...Array.from({ length: 8 }, (_, i) => seededBytes(5, i, max))];
  for (const d of sent) expect(client.conn.sendDirect(d)).toBe(true);

  // DIRECT is unreliable in general, but ten datagrams (~12 KB) on loopback fit the kernel's
  // receive buffer many times over: all of them arrive, each intact (in any order).
  await waitUntil(() => direct.length >= sent.length, 10_000);
  expect(direct.map(sha256).sort()).toEqual(sent.map(sha256).sort());
  // DIRECT is not a message.
  expect(serverSide.count).toBe(0);

  expect(() => client.conn.sendDirect(new Uint8Array(max + 1))).toThrow(MessageTooLargeError);
  expect(() => serverSide.conn.sendDirect(new Uint8Array(64 * 1024))).toThrow(MessageTooLargeError);

  // direct$ completes when the connection closes; sendDirect then returns false.
  serverSide.conn.close();
  expect(directEnded).toBe(true);
  expect(serverSide.conn.sendDirect(Buffer.from('late'))).toBe(false);
  await within(client.inbox.end, 5000, 'starter side closing');
  expect(client.conn.sendDirect(Buffer.from('late'))).toBe(false);
});

async function waitUntil(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  return check();
}
