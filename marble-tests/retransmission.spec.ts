import { TestScheduler } from 'rxjs/testing';
import { ack, harness } from './harness';

const quiet = { pingInterval: 1_000_000, deliveryTimeout: 200 };

describe('retransmission', () => {
  let ts: TestScheduler;
  beforeEach(() => (ts = new TestScheduler((a, b) => expect(a).toEqual(b))));

  it('resends an unacknowledged packet at the RTO, doubling each time', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, quiet, hot(''));
      cold('a', { a: Buffer.from('x') }).subscribe((m) => connection.send$.next(m));
      // 0, then +200, +400, +800 (back-off per timeout of the same packet)
      expectObservable(outgoing$, '^ 1500ms !').toBe('a 199ms a 399ms a 799ms a', { a: 'D0' });
    });
  });

  it('stops resending once acknowledged', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, quiet, hot('250ms a', { a: ack(1) }));
      cold('a', { a: Buffer.from('x') }).subscribe((m) => connection.send$.next(m));
      expectObservable(outgoing$, '^ 3000ms !').toBe('a 199ms a', { a: 'D0' });
    });
  });

  it('caps the back-off at 64 × deliveryTimeout', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, { pingInterval: 1_000_000, deliveryTimeout: 10 }, hot(''));
      cold('a', { a: Buffer.from('x') }).subscribe((m) => connection.send$.next(m));
      // 10 × 2^k: 10, 20, 40, 80, 160, 320, 640, then capped at 640
      expectObservable(outgoing$, '^ 2600ms !').toBe('a 9ms a 19ms a 39ms a 79ms a 159ms a 319ms a 639ms a 639ms a 639ms a', { a: 'D0' });
    });
  });

  it('adapts the RTO to measured round trips (RFC 6298), so a later loss is resent sooner', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      // first message acked after 20 ms: SRTT 20, RTTVAR 10, RTO = 20 + 40 = 60 ms
      const { connection, outgoing$ } = harness(ts, quiet, hot('20ms a', { a: ack(1) }));
      cold('a 99ms b', { a: Buffer.from('x'), b: Buffer.from('y') }).subscribe((m) => connection.send$.next(m));
      expectObservable(outgoing$, '^ 200ms !').toBe('a 99ms b 59ms b', { a: 'D0', b: 'D1' });
    });
  });

  it('restarts the timeout on every ack that makes progress (RFC 6298 §5.3), with the current RTO', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      // D0 acked at 150 (SRTT 150, RTTVAR 75: RTO = min(200, 450) = 200); D1 is never acked and
      // times out 200 ms after that ack, not 200 ms after it was sent
      const { connection, outgoing$ } = harness(ts, quiet, hot('150ms a', { a: ack(1) }));
      cold('(ab)', { a: Buffer.from('x'), b: Buffer.from('y') }).subscribe((m) => connection.send$.next(m));
      expectObservable(outgoing$, '^ 400ms !').toBe('(ab) 346ms b', { a: 'D0', b: 'D1' });
    });
  });

  it('on a timeout resends the earliest packet and the newest as a tail probe, not the whole window', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      // D0..D3 at 0, nothing acked: at 200 D0 (earliest) and D3 (tail probe); D1, D2 wait a fresh RTO
      const { connection, outgoing$ } = harness(ts, quiet, hot(''));
      cold('(abcd)', { a: Buffer.from('a'), b: Buffer.from('b'), c: Buffer.from('c'), d: Buffer.from('d') }).subscribe((m) => connection.send$.next(m));
      expectObservable(outgoing$, '^ 300ms !').toBe('(abcd) 194ms (ad)', { a: 'D0', b: 'D1', c: 'D2', d: 'D3' });
    });
  });

  it('a packet sent before an acknowledged first transmission and still missing is resent at once', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      // D0 at 0, D1 at 40; the ack at 80 confirms D1 only: D0 was overtaken
      const { connection, outgoing$ } = harness(ts, quiet, hot('80ms a', { a: ack(0, [{ start: 1, end: 1 }]) }));
      cold('a 39ms b', { a: Buffer.from('a'), b: Buffer.from('b') }).subscribe((m) => connection.send$.next(m));
      expectObservable(outgoing$, '^ 100ms !').toBe('a 39ms b 39ms a', { a: 'D0', b: 'D1' });
    });
  });

  it('on a path that has not reordered, a packet sent even 1 ms before an acknowledged one is resent at once', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, quiet, hot('40ms a', { a: ack(0, [{ start: 1, end: 1 }]) }));
      cold('a b', { a: Buffer.from('a'), b: Buffer.from('b') }).subscribe((m) => connection.send$.next(m));
      expectObservable(outgoing$, '^ 100ms !').toBe('a b 38ms a', { a: 'D0', b: 'D1' });
    });
  });

  it('once a resend is confirmed too soon to be its own (the original came late: the path reorders), a packet must trail by a quarter RTT to be called lost', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      // D0 resent at 40 as overtaken, confirmed at 41: the original arrived. D2 (60) is then
      // not lost when D3 (61) is confirmed first at 100: it left only 1 ms before it.
      const acks = { a: ack(0, [{ start: 1, end: 1 }]), b: ack(2), c: ack(2, [{ start: 3, end: 3 }]) };
      const { connection, outgoing$ } = harness(ts, { ...quiet, redundancy: 'off' }, hot('40ms a b 58ms c', acks));
      cold('a b 58ms c d', { a: Buffer.from('a'), b: Buffer.from('b'), c: Buffer.from('c'), d: Buffer.from('d') }).subscribe((m) => connection.send$.next(m));
      expectObservable(outgoing$, '^ 130ms !').toBe('a b 38ms a 19ms c d', { a: 'D0', b: 'D1', c: 'D2', d: 'D3' });
    });
  });
});
