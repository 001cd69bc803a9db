/**
 * Backpressure: producers that never overflow the send buffer (`maxBufferedBytes`).
 *
 *   npm run example -- backpressure
 *
 * Offers 64 MiB as fast as the bound allows, twice: with `sendAll` (send$ throttled on
 * bufferedBytes$) and with `sendAcknowledged` (send() under mergeMap), on loopback with a 4 MiB
 * bound, and prints the largest buffered amount seen next to the bound.
 *
 * In your project, import from 'rx-rudp' instead of '../lib/index'.
 */
// #region readme
import { filter, firstValueFrom, mergeMap, range, type Observable } from 'rxjs';
import type { CloseInfo, Connection } from '../lib/index';

/**
 * Pull-based: sends each message once it fits in the send buffer (bufferedBytes + size <=
 * maxBufferedBytes), so the next one is only produced then. Resolves when all are queued
 * (complete send$ afterwards to flush and close); rejects if the connection ends first.
 */
export async function sendAll(conn: Connection, messages: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): Promise<void> {
  let ended: CloseInfo | undefined;
  const watch = conn.closed$.subscribe((info) => (ended = info));
  const check = (): void => {
    if (ended !== undefined) throw ended.error ?? new Error('the connection closed before everything was sent');
  };
  try {
    for await (const message of messages) {
      check();
      // bufferedBytes$ replays the current value, and falls as the peer acknowledges.
      await firstValueFrom(conn.bufferedBytes$.pipe(filter((buffered) => buffered + message.length <= conn.maxBufferedBytes)));
      check();
      conn.send$.next(message);
    }
  } finally {
    watch.unsubscribe();
  }
}

/**
 * mergeMap(…, n) style: at most `concurrency` messages unacknowledged at a time; send() completes
 * on acknowledgement. With concurrency × largest message <= maxBufferedBytes, send() never fails
 * with SendBufferFullError. `make(i)` is only called when message i may go.
 */
export function sendAcknowledged(conn: Connection, count: number, make: (index: number) => Uint8Array, concurrency: number): Observable<void> {
  return range(0, count).pipe(mergeMap((index) => conn.send(make(index)), concurrency));
}
// #endregion

import { from, ignoreElements, lastValueFrom, ReplaySubject, switchMap } from 'rxjs';
import { connect, listen } from '../lib/index';

const MIB = 1024 * 1024;

/** `count` 1 MiB messages, each made only when asked for. */
function* chunks(count: number): Generator<Uint8Array> {
  for (let i = 0; i < count; i++) yield Buffer.alloc(MIB, i & 0xff);
}

async function main(): Promise<void> {
  const bound = 4 * MIB;
  const total = 64 * MIB;
  let received = 0;
  const port$ = new ReplaySubject<number>(1);
  const server = listen({ host: '127.0.0.1', port: 0, onListening: (address) => port$.next(address.port) }).subscribe((conn) => {
    conn.messages$.subscribe({ next: (m) => (received += m.length), error: () => undefined });
  });
  const port = await firstValueFrom(port$);

  for (const way of ['sendAll', 'sendAcknowledged'] as const) {
    received = 0;
    let largest = 0;
    const started = performance.now();
    // connect() completes when the connection closes: after everything was acknowledged.
    await lastValueFrom(
      connect({ host: '127.0.0.1', port, maxBufferedBytes: bound }).pipe(
        switchMap((conn) => {
          conn.bufferedBytes$.subscribe((buffered) => (largest = Math.max(largest, buffered)));
          const sent =
            way === 'sendAll'
              ? sendAll(conn, chunks(total / MIB)).then(() => conn.send$.complete()) // flush, then close normally
              : lastValueFrom(sendAcknowledged(conn, total / MIB, (i) => Buffer.alloc(MIB, i & 0xff), bound / MIB), { defaultValue: undefined }).then(() => conn.close());
          return from(sent).pipe(ignoreElements());
        }),
      ),
      { defaultValue: undefined },
    );
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `${way}: ${total / MIB} MiB offered in 1 MiB messages, ${received === total ? 'all' : `only ${received} bytes`} arrived ` +
        `in ${seconds.toFixed(2)} s; largest bufferedBytes ${largest} <= maxBufferedBytes ${bound}: ${largest <= bound}`,
    );
    if (received !== total || largest > bound) process.exitCode = 1;
  }
  server.unsubscribe();
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
