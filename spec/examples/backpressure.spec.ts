/**
 * The README's backpressure recipes (examples/backpressure.ts) under load on real loopback: a
 * producer offering 256 MiB (32 times the bound) as fast as the bound allows never takes the
 * buffered bytes past maxBufferedBytes, and everything arrives, in order, intact.
 */
import { createHash } from 'node:crypto';
import { Subscription, lastValueFrom, ReplaySubject, firstValueFrom, type Observable } from 'rxjs';
import { connect, listen, type Connection } from '../../lib/index';
import { sendAcknowledged, sendAll } from '../../examples/backpressure';

const MIB = 1024 * 1024;
const HOST = '127.0.0.1';
/** Messages whose content is hashed on both sides (all are counted and spot-checked). */
const HASH_EVERY = 16;

let subscriptions = new Subscription();
afterEach(() => {
  subscriptions.unsubscribe(); // closes every socket a test opened
  subscriptions = new Subscription();
});

/** Message `i`: 1 MiB, its index in the first 4 bytes, then the byte `i & 0xff`. */
function message(i: number): Buffer {
  const m = Buffer.alloc(MIB, i & 0xff);
  m.writeUInt32BE(i, 0);
  return m;
}

interface Receiving {
  readonly port: number;
  bytes: number;
  count: number;
  readonly hash: ReturnType<typeof createHash>;
  problem: string | undefined;
  /** Settles when the listener side's messages$ ends: 'complete' or the error's message. */
  readonly end: Promise<string>;
}

/** A listener that checks every message (order, size, contents at both ends) and hashes a sample. */
async function receiver(): Promise<Receiving> {
  const port$ = new ReplaySubject<number>(1);
  let settle!: (how: string) => void;
  const r: Omit<Receiving, 'port'> = { bytes: 0, count: 0, hash: createHash('sha256'), problem: undefined, end: new Promise((res) => (settle = res)) };
  subscriptions.add(
    listen({ host: HOST, port: 0, onListening: (address) => port$.next(address.port) }).subscribe((conn) => {
      conn.messages$.subscribe({
        next: (m) => {
          const i = r.count++;
          r.bytes += m.length;
          const b = Buffer.from(m.buffer, m.byteOffset, m.byteLength);
          if (r.problem === undefined && (m.length !== MIB || b.readUInt32BE(0) !== i || b[4] !== (i & 0xff) || b[MIB - 1] !== (i & 0xff))) {
            r.problem = `message ${i}: ${m.length} bytes, index ${b.readUInt32BE(0)}`;
          }
          if (i % HASH_EVERY === 0) r.hash.update(m);
        },
        error: (e: Error) => settle(`error: ${e.message}`),
        complete: () => settle('complete'),
      });
    }),
  );
  return Object.assign(r, { port: await firstValueFrom(port$) });
}

interface Watched {
  /** Largest bufferedBytes$ value, and largest stats.bufferedBytes read at each change. */
  largest: number;
  largestStats: number;
  changes: number;
}

/** Connects with `maxBufferedBytes`, runs `produce`, and resolves once the connection has closed. */
async function transfer(port: number, maxBufferedBytes: number, produce: (conn: Connection) => Promise<void> | Observable<void>): Promise<Watched> {
  const watched: Watched = { largest: 0, largestStats: 0, changes: 0 };
  await new Promise<void>((resolve, reject) => {
    subscriptions.add(
      connect({ host: HOST, port, maxBufferedBytes }).subscribe({
        next: (conn) => {
          expect(conn.maxBufferedBytes).toBe(maxBufferedBytes);
          conn.bufferedBytes$.subscribe((buffered) => {
            watched.changes++;
            watched.largest = Math.max(watched.largest, buffered);
            watched.largestStats = Math.max(watched.largestStats, conn.stats.bufferedBytes);
          });
          conn.messages$.subscribe({ error: reject }); // an abnormal end (e.g. SendBufferFullError) fails the test
          const produced = produce(conn);
          const done = produced instanceof Promise ? produced : lastValueFrom(produced, { defaultValue: undefined });
          done.then(() => conn.send$.complete(), reject); // flush, then close normally
        },
        error: reject,
        complete: () => resolve(),
      }),
    );
  });
  return watched;
}

test('sendAll: 256 MiB offered as fast as the 8 MiB bound allows never exceeds it; all of it arrives intact', async () => {
  // 32 times the bound: the producer fills it and is held back again and again (at least one
  // bufferedBytes change per message, see below), which is all a larger volume would show.
  const COUNT = 256;
  const BOUND = 8 * MIB;
  const r = await receiver();
  const sent = createHash('sha256');
  function* messages(): Generator<Uint8Array> {
    for (let i = 0; i < COUNT; i++) {
      const m = message(i);
      if (i % HASH_EVERY === 0) sent.update(m);
      yield m;
    }
  }
  const watched = await transfer(r.port, BOUND, (conn) => sendAll(conn, messages()));
  expect(await r.end).toBe('complete');
  expect(watched.largest).toBeLessThanOrEqual(BOUND);
  expect(watched.largestStats).toBeLessThanOrEqual(BOUND);
  expect(watched.largest).toBeGreaterThan(BOUND / 2); // the bound was actually reached: the producer was throttled
  expect(watched.changes).toBeGreaterThan(COUNT);
  expect(r.problem).toBeUndefined();
  expect(r.count).toBe(COUNT);
  expect(r.bytes).toBe(COUNT * MIB);
  expect(r.hash.digest('hex')).toBe(sent.digest('hex'));
}, 120_000);

test('sendAcknowledged: mergeMap(send(), 8) with 1 MiB messages and an 8 MiB bound: never SendBufferFullError, never past the bound', async () => {
  const COUNT = 256;
  const BOUND = 8 * MIB;
  const r = await receiver();
  const sent = createHash('sha256');
  const make = (i: number): Uint8Array => {
    const m = message(i);
    if (i % HASH_EVERY === 0) sent.update(m);
    return m;
  };
  const watched = await transfer(r.port, BOUND, (conn) => sendAcknowledged(conn, COUNT, make, BOUND / MIB));
  expect(await r.end).toBe('complete');
  expect(watched.largest).toBeLessThanOrEqual(BOUND);
  expect(watched.largestStats).toBeLessThanOrEqual(BOUND);
  expect(watched.largest).toBeGreaterThan(BOUND / 2);
  expect(r.problem).toBeUndefined();
  expect(r.count).toBe(COUNT);
  expect(r.hash.digest('hex')).toBe(sent.digest('hex'));
}, 120_000);

test('sendAll rejects when the connection ends first, instead of producing into the void', async () => {
  const r = await receiver();
  let produced = 0;
  function* endless(): Generator<Uint8Array> {
    for (;;) {
      produced++;
      yield message(produced);
    }
  }
  const failure = await new Promise<unknown>((resolve) => {
    subscriptions.add(
      connect({ host: HOST, port: r.port, maxBufferedBytes: 4 * MIB }).subscribe((conn) => {
        sendAll(conn, endless()).then(() => resolve('resolved'), resolve);
        setTimeout(() => conn.close(), 50);
      }),
    );
  });
  expect(failure).toEqual(new Error('the connection closed before everything was sent'));
  expect(produced).toBeLessThan(10_000);
});
