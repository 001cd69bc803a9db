/**
 * The listener-wide memory bound (`maxMemory`): the bytes a listener holds for all its
 * connections — received and not consumed, being reassembled, or waiting to be acknowledged —
 * stay under it, measured two ways: the listener's own `memoryInUse` figure, sampled every
 * virtual millisecond, and the process's heap and buffers after full GCs, which no accounting
 * mistake can fake. At the bound, windows close and peers wait; new connections are refused
 * with reason 5; `send()` refuses; and once applications consume, everything arrives, whole and
 * in order, and the figure returns to 0. Virtual network, virtual time.
 */
import { VirtualAction, VirtualTimeScheduler, retry, tap, throwError, timer, type Subscription } from 'rxjs';
import fc from 'fast-check';
import { ConnectionRefusedError, InvalidOptionError, SendBufferFullError, type Connection, type EndpointStats } from '../../lib/index';
import { VirtualNetwork, connect, listen, type VirtualListenOptions } from '../../lib/testing/index';
import { MiB, digest, gc } from './helpers';

jest.setTimeout(120_000);

const HOST = '10.0.0.2';
const PORT = 5000;
const PROTOCOL = { maxMessageSize: 1 * MiB, receiveWindow: 64 } as const;
const MAX_MEMORY = 4 * MiB;

/** heapUsed + arrayBuffers after full garbage collections. */
function memory(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function virtualWorld(seed = 1, impairment = {}) {
  const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
  const network = new VirtualNetwork({ scheduler, seed, default: { delay: 2, ...impairment } });
  const subscriptions: Subscription[] = [];
  let stats: EndpointStats | undefined;
  let mostInUse = 0;
  // The figure, sampled every virtual millisecond while the world runs.
  const sample = (): void => void (mostInUse = Math.max(mostInUse, stats?.memoryInUse ?? 0));
  return {
    scheduler,
    network,
    keep: (s: Subscription) => void subscriptions.push(s),
    listening: (s: EndpointStats) => void (stats = s),
    stats: () => stats!,
    mostInUse: () => mostInUse,
    run(ms: number) {
      const end = scheduler.now() + ms;
      while (scheduler.now() < end) {
        scheduler.schedule(() => undefined, 1);
        scheduler.maxFrames = scheduler.now() + 1;
        scheduler.flush();
        sample();
      }
    },
    close: () => subscriptions.splice(0).reverse().forEach((s) => s.unsubscribe()),
  };
}
type World = ReturnType<typeof virtualWorld>;

function listener(w: World, options: Partial<VirtualListenOptions>, onConnection: (c: Connection) => void): void {
  w.keep(listen(w.network, { host: HOST, port: PORT, ...PROTOCOL, maxMemory: MAX_MEMORY, onListening: (_, s) => w.listening(s), ...options }).subscribe(onConnection));
}

/** A starter from `from` that sends `outgoing` as soon as it is open; what happened to it. */
function starter(w: World, from: string, outgoing: readonly Buffer[]) {
  const result: { conn: Connection | undefined; error: Error | undefined } = { conn: undefined, error: undefined };
  w.keep(
    connect(w.network, { from, host: HOST, port: PORT, ...PROTOCOL }).subscribe({
      next: (c) => {
        result.conn = c;
        for (const m of outgoing) c.send$.next(m);
      },
      error: (e: Error) => void (result.error = e),
    }),
  );
  return result;
}

/** Messages whose bytes depend on (tag, index). */
function messages(tag: number, sizes: readonly number[]): Buffer[] {
  return sizes.map((size, i) => {
    const m = Buffer.alloc(size);
    for (let j = 0; j < size; j += 997) m[j] = (j + i * 7 + tag) & 0xff;
    m.writeUInt32BE(tag * 1000 + i, 0);
    return m;
  });
}

test('applications that do not consume yet: the listener holds at most maxMemory, refuses connections at the bound, then delivers everything', () => {
  const w = virtualWorld();
  const PEERS = 12;
  const outgoing = Array.from({ length: PEERS }, (_, p) => messages(p, [1 * MiB - 64, 1 * MiB - 64, 300 * 1024]));
  const connections: Connection[] = [];
  listener(w, {}, (c) => void connections.push(c));
  w.run(10);
  const before = memory();
  const starters = outgoing.map((m, p) => starter(w, `10.0.1.${p + 1}`, m));
  // Nobody consumes for 5 s: the held bytes grow to the bound and stay there.
  w.run(5000);
  const held = memory() - before;
  expect(connections).toHaveLength(PEERS);
  expect(w.mostInUse()).toBeLessThanOrEqual(MAX_MEMORY);
  expect(w.stats().memoryInUse).toBeGreaterThan(MAX_MEMORY / 2); // the bound was what held them back
  // Each peer's first message alone would be 12 MiB held; the bound, plus the starters' and
  // connections' own state (24 connections, their sockets and in-flight records: the heap grew by
  // 7.06-7.36 MB across Node lines with the bound at 4 MiB), is far below that.
  expect(held).toBeLessThan(MAX_MEMORY + 4 * MiB);
  expect(connections.reduce((n, c) => n + c.stats.droppedForMemory, 0)).toBeGreaterThan(0);

  // A new connection now is refused, and says why.
  const late = starter(w, '10.0.2.1', []);
  w.run(100);
  expect(late.error).toBeInstanceOf(ConnectionRefusedError);
  expect(late.error!.message).toMatch(/memory/);

  // The applications consume: every message arrives, whole and in order.
  const received = connections.map(() => [] as string[]);
  connections.forEach((c, i) => c.messages$.subscribe((m) => void received[i]!.push(digest(m))));
  // Promptly: a peer whose packets were turned away is asked for them as soon as there is room,
  // rather than left to its retransmission timers, which back off for seconds while it waits.
  w.run(3000);
  const expected = connections.map((c) => outgoing[Number(c.remote.address.split('.')[3]) - 1]!.map(digest));
  expect(received).toEqual(expected);
  expect(w.mostInUse()).toBeLessThanOrEqual(MAX_MEMORY);
  expect(w.stats().memoryInUse).toBe(0);

  // With room again, a new connection is accepted.
  const again = starter(w, '10.0.2.2', []);
  w.run(100);
  expect(again.error).toBeUndefined();
  expect(again.conn).toBeDefined();
  for (const s of starters) s.conn?.close();
  w.run(100);
  w.close();
});

test("send() on a listener's connection refuses beyond maxMemory with an error that says so, and the room left shows in maxBufferedBytes", () => {
  const w = virtualWorld();
  let conn: Connection | undefined;
  listener(w, {}, (c) => void (conn = c));
  // The starter's application does not consume: its window closes and the listener's sends wait.
  const peer = starter(w, '10.0.1.1', []);
  w.run(10);
  const refusals: Error[] = [];
  let acknowledged = 0;
  let mostBuffered = 0;
  for (let i = 0; i < 200; i++) {
    const size = 64 * 1024;
    expect(conn!.maxBufferedBytes).toBeGreaterThanOrEqual(conn!.stats.bufferedBytes);
    conn!.send(Buffer.alloc(size, i)).subscribe({ complete: () => void acknowledged++, error: (e: Error) => void refusals.push(e) });
    mostBuffered = Math.max(mostBuffered, conn!.stats.bufferedBytes);
    w.run(5);
  }
  expect(refusals.length).toBeGreaterThan(100);
  expect(refusals.every((e) => e instanceof SendBufferFullError && /maxMemory/.test(e.message))).toBe(true);
  expect(mostBuffered).toBeLessThanOrEqual(MAX_MEMORY);
  expect(w.mostInUse()).toBeLessThanOrEqual(MAX_MEMORY);
  // What is left is what maxBufferedBytes says: less than one more message.
  expect(conn!.stats.bufferedBytes + 64 * 1024).toBeGreaterThan(conn!.maxBufferedBytes);
  // The peer consumes: what was accepted is delivered and acknowledged, and the room comes back.
  let delivered = 0;
  peer.conn!.messages$.subscribe(() => void delivered++);
  w.run(10_000);
  expect(delivered).toBe(200 - refusals.length);
  expect(acknowledged).toBe(delivered);
  // All the room is back: what the bound leaves beside the reserve for an in-order message.
  expect(conn!.maxBufferedBytes).toBe(MAX_MEMORY - (PROTOCOL.maxMessageSize + 1200));
  expect(w.stats().memoryInUse).toBe(0);
  w.close();
});

test('maxMemory below what one message and one window need is refused, naming the options that set the floor', () => {
  const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
  const network = new VirtualNetwork({ scheduler });
  expect(() => listen(network, { host: HOST, port: PORT, ...PROTOCOL, maxMemory: 1 * MiB })).toThrow(InvalidOptionError);
  expect(() => listen(network, { host: HOST, port: PORT, ...PROTOCOL, maxMemory: 1 * MiB })).toThrow(/maxMemory.*maxMessageSize/);
});

test('under loss, duplication and reordering with little room: every message arrives once, whole, in order, and the bound holds', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      fc.array(fc.array(fc.integer({ min: 4, max: 1 * MiB - 64 }), { minLength: 1, maxLength: 3 }), { minLength: 2, maxLength: 4 }),
      fc.integer({ min: 0, max: 40 }),
      (seed, sizes, consumeMs) => {
        const w = virtualWorld(seed, { loss: 0.05, duplicate: 0.02, reorder: 0.1, jitter: 5 });
        // Room for one whole message (the reserve) and three receive windows: peers wait on each other.
        const maxMemory = PROTOCOL.maxMessageSize + 1200 + 3 * PROTOCOL.receiveWindow * 1200;
        const received = new Map<string, string[]>();
        listener(w, { maxMemory }, (c) => {
          const mine: string[] = [];
          received.set(c.remote.address, mine);
          w.keep(c.receive((m) => timer(consumeMs, w.scheduler).pipe(tap({ complete: () => void mine.push(digest(m)) }))).subscribe());
        });
        const outgoing = sizes.map((s, p) => messages(p, s));
        // A starter refused while the listener is full tries again, as an application would.
        outgoing.forEach((m, p) =>
          w.keep(
            connect(w.network, { from: `10.0.1.${p + 1}`, host: HOST, port: PORT, ...PROTOCOL })
              .pipe(retry({ delay: (e: unknown) => (e instanceof ConnectionRefusedError ? timer(200, w.scheduler) : throwError(() => e)) }))
              .subscribe((c) => m.forEach((message) => c.send$.next(message))),
          ),
        );
        w.run(30_000);
        const ok =
          w.mostInUse() <= maxMemory &&
          outgoing.every((m, p) => JSON.stringify(received.get(`10.0.1.${p + 1}`)) === JSON.stringify(m.map(digest)));
        w.close();
        return ok;
      },
    ),
    { numRuns: 12 },
  );
});
