import { TestScheduler } from 'rxjs/testing';
import { map } from 'rxjs';
import { SendBufferFullError } from '../lib/core/errors';
import { ack, harness } from './harness';

const quiet = { pingInterval: 1_000_000, deliveryTimeout: 200 };

describe('send buffer, bufferedBytes$, events$ and statsEvery', () => {
  let ts: TestScheduler;
  beforeEach(() => (ts = new TestScheduler((a, b) => expect(a).toEqual(b))));

  it('bufferedBytes$ rises as messages are queued and falls as they are acknowledged', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      const { connection } = harness(ts, quiet, hot('10ms a 9ms b', { a: ack(1), b: ack(2) }));
      cold('(ab)', { a: Buffer.alloc(100), b: Buffer.alloc(50) }).subscribe((m) => connection.send$.next(m));
      expectObservable(connection.bufferedBytes$, '^ 30ms !').toBe('c 9ms d 9ms e', { c: 150, d: 50, e: 0 }); // replays the current value (both queued at 0)
    });
  });

  it('send() completes on acknowledgement, and errors at once when the message does not fit', () => {
    ts.run(({ hot, expectObservable }) => {
      const { connection } = harness(ts, { ...quiet, maxBufferedBytes: 1000 }, hot('10ms a', { a: ack(1) }));
      expectObservable(connection.send(Buffer.alloc(600))).toBe('10ms |');
      const error = new SendBufferFullError(
        'a 600-byte message does not fit: 600 of maxBufferedBytes 1000 are waiting for acknowledgement; wait on bufferedBytes$ (or use send() with mergeMap) before sending more, or raise maxBufferedBytes',
      );
      expectObservable(connection.send(Buffer.alloc(600))).toBe('#', undefined, error);
      expect(connection.stats.messagesSent).toBe(1);
    });
  });

  it('a send$ producer that overflows the bound closes the connection (CLOSE reason 4) with SendBufferFullError', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, { ...quiet, maxBufferedBytes: 1000 }, hot(''));
      cold('a b', { a: Buffer.alloc(600), b: Buffer.alloc(600) }).subscribe((m) => connection.send$.next(m));
      expectObservable(outgoing$, '^ 10ms !').toBe('a(cc)', { a: 'D0', c: 'C4' });
      expectObservable(connection.messages$.pipe(map(() => 'm'))).toBe('-#', undefined, expect.any(SendBufferFullError));
    });
  });

  it('events$ tells of retransmissions and the close', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      const { connection } = harness(ts, quiet, hot(''));
      cold('a', { a: Buffer.from('x') }).subscribe((m) => connection.send$.next(m));
      cold('300ms c').subscribe(() => connection.close());
      expectObservable(connection.events$.pipe(map((e) => e.type))).toBe('200ms r 99ms (c|)', { r: 'retransmit', c: 'close' });
    });
  });

  it('statsEvery emits snapshots on the scheduler until the connection closes', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      const { connection } = harness(ts, quiet, hot(''));
      cold('250ms c').subscribe(() => connection.close());
      expectObservable(connection.statsEvery(100).pipe(map((s) => s.packetsSent))).toBe('100ms a 99ms a 49ms |', { a: 0 });
    });
  });
});
