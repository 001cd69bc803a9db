import { TestScheduler } from 'rxjs/testing';
import { ack, data, harness, repeat } from './harness';

const quiet = { pingInterval: 1_000_000, deliveryTimeout: 200, repeatDelay: 5 };

describe('repeat requests', () => {
  let ts: TestScheduler;
  beforeEach(() => (ts = new TestScheduler((a, b) => expect(a).toEqual(b))));

  it('asks for a gap once it has lasted repeatDelay, and again after deliveryTimeout / 2 without an RTT', () => {
    ts.run(({ hot, expectObservable }) => {
      const { outgoing$ } = harness(ts, quiet, hot('(ab)', { a: data(0), b: data(2) }));
      // D0 completes a message on a quiet connection and D2 is out of order: both acked at once;
      // REPEAT for 1 after 5 ms, again every 100 ms
      expectObservable(outgoing$, '^ 300ms !').toBe('(xa) 1ms r 99ms r 99ms r', { x: 'A1', a: 'A1+2', r: 'R1' });
    });
  });

  it('asks at once when 3 packets beyond the gap have arrived', () => {
    ts.run(({ hot, expectObservable }) => {
      const { outgoing$ } = harness(ts, quiet, hot('a b c d', { a: data(0), b: data(2), c: data(3), d: data(4) }));
      // 2 opens the gap (acknowledged at once); 3 and 4 only follow it: their acknowledgement waits (docs/protocol.md §15).
      expectObservable(outgoing$, '^ 5ms !').toBe('xa-r', { x: 'A1', a: 'A1+2', r: 'R1' });
    });
  });

  it('stops asking once the gap is filled', () => {
    ts.run(({ hot, expectObservable }) => {
      const { outgoing$ } = harness(ts, quiet, hot('(ab) 9ms c', { a: data(0), b: data(2), c: data(1) }));
      expectObservable(outgoing$, '^ 400ms !').toBe('(xa) 1ms r 7ms c', { x: 'A1', a: 'A1+2', r: 'R1', c: 'A3' }); // filling a gap is acknowledged at once
    });
  });

  it('resends the named packets at once on REPEAT, without back-off', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, { ...quiet, redundancy: 'off' }, hot('50ms r', { r: repeat({ start: 1, end: 2 }) }));
      cold('(abc)', { a: Buffer.from('a'), b: Buffer.from('b'), c: Buffer.from('c') }).subscribe((m) => connection.send$.next(m));
      // resent at 50; their timeouts restart from 50 with the same RTO (200). At 200 D0 times out:
      // the earliest due packet goes, with the newest (D2) as a tail probe; at 250 D1 (and D2 again)
      expectObservable(outgoing$, '^ 260ms !').toBe('(abc) 45ms (bc) 146ms (ac) 46ms (bc)', { a: 'D0', b: 'D1', c: 'D2' });
    });
  });

  it('resends a packet overtaken by a later one that the peer acknowledged (RACK-style), without waiting for REPEAT', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      // D0 at 0, D1 at 30; the ack at 60 confirms D1 only: D1's RTT is 30, D0 left 30 ms before D1 (> RTT / 4)
      const { connection, outgoing$ } = harness(ts, quiet, hot('60ms a', { a: ack(0, [{ start: 1, end: 1 }]) }));
      cold('a 29ms b', { a: Buffer.from('a'), b: Buffer.from('b') }).subscribe((m) => connection.send$.next(m));
      expectObservable(outgoing$, '^ 100ms !').toBe('a 29ms b 29ms a', { a: 'D0', b: 'D1' });
    });
  });

  it('does not resend a packet sent just before the acknowledged one (could be reordering)', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, quiet, hot('60ms a', { a: ack(0, [{ start: 1, end: 1 }]) }));
      cold('(ab)', { a: Buffer.from('a'), b: Buffer.from('b') }).subscribe((m) => connection.send$.next(m));
      expectObservable(outgoing$, '^ 100ms !').toBe('(ab)', { a: 'D0', b: 'D1' });
    });
  });
});
