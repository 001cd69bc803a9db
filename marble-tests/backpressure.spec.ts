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
      ts.schedule(() => expect(connection.stats.messagesSent).toBe(1), 5);
    });
  });

  it('send() is cold: nothing is queued until it is subscribed', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, quiet, hot(''));
      const sending = connection.send(Buffer.from('x'));
      expect(connection.stats.messagesSent).toBe(0);
      cold('20ms a').subscribe(() => sending.subscribe({ error: () => undefined })); // (the quiet peer times out in the end)
      expectObservable(outgoing$, '^ 30ms !').toBe('20ms a', { a: 'D0' });
    });
  });

  it('unsubscribing from send() before any packet left withdraws the message; after, it is still delivered', () => {
    ts.run(({ hot, expectObservable }) => {
      // A peer window of 1: the second message waits behind the first.
      const { connection, outgoing$ } = harness(ts, quiet, hot('50ms a', { a: ack(1) }), { peerReceiveWindow: 1 });
      const first = connection.send(Buffer.from('first')).subscribe();
      const second = connection.send(Buffer.from('second')).subscribe();
      const third = connection.send(Buffer.from('third')).subscribe();
      expect(connection.stats.bufferedBytes).toBe(16);
      first.unsubscribe(); // its packet has left: it is still delivered
      second.unsubscribe(); // nothing of it has left: withdrawn
      expect(connection.stats.bufferedBytes).toBe(10);
      // After the ack of seq 0, seq 1 is the third message (batch 1: no hole left by the second).
      expectObservable(outgoing$.pipe(map((d) => d)), '^ 60ms !').toBe('a 49ms b', { a: 'D0', b: 'D1' });
      ts.schedule(() => {
        expect(connection.stats.messagesSent).toBe(3);
        third.unsubscribe();
      }, 60);
    });
  });

  it('a message whose first packet has left is not withdrawn by unsubscribing: the rest of its batch follows', () => {
    ts.run(({ hot, expectObservable }) => {
      // Three packets (1182-byte payloads), a peer window of 1: one packet out per ack.
      const { connection, outgoing$ } = harness(ts, quiet, hot('10ms a 9ms b', { a: ack(1, [], 1), b: ack(2, [], 1) }), { peerReceiveWindow: 1 });
      const sending = connection.send(Buffer.alloc(3000)).subscribe();
      sending.unsubscribe(); // D0 has left
      expectObservable(outgoing$, '^ 30ms !').toBe('a 9ms b 9ms c', { a: 'D0', b: 'D1', c: 'D2' });
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
