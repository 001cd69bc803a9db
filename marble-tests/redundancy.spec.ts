import { TestScheduler } from 'rxjs/testing';
import { ack, harness, repeat } from './harness';

const quiet = { pingInterval: 1_000_000, deliveryTimeout: 200 };

describe('redundancy after loss: small messages, and the resends a stream waits for', () => {
  let ts: TestScheduler;
  beforeEach(() => (ts = new TestScheduler((a, b) => expect(a).toEqual(b))));

  it('sends small messages once until a loss is reported, then twice: the resend, and new ones while nothing else is queued', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, quiet, hot('20ms r 9ms a', { r: repeat({ start: 0, end: 0 }), a: ack(1) }));
      cold('a 39ms b', { a: Buffer.from('x'), b: Buffer.from('y') }).subscribe((m) => connection.send$.next(m));
      expectObservable(outgoing$, '^ 100ms !').toBe('a 19ms (aa) 16ms (bb)', { a: 'D0', b: 'D1' });
    });
  });

  it('never duplicates large packets', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, quiet, hot('20ms r 9ms a', { r: repeat({ start: 0, end: 0 }), a: ack(1) }));
      cold('a 39ms b', { a: Buffer.from('x'), b: Buffer.alloc(1000) }).subscribe((m) => connection.send$.next(m));
      expectObservable(outgoing$, '^ 100ms !').toBe('a 19ms (aa) 16ms b', { a: 'D0', b: 'D1' });
    });
  });

  it('resends a lost large packet twice when nothing else is queued, once while more is waiting', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      // A 1000-byte D0 asked for again at 20: a stream's resend goes twice. Later, D1..D3 queued at
      // once behind a peer window of 1: the resend of D1 at 70 goes once (a transfer, not a stream).
      const acks = hot('20ms r 9ms a 39ms s', { r: repeat({ start: 0, end: 0 }), a: ack(1, [], 1), s: repeat({ start: 1, end: 1 }) });
      const { connection, outgoing$ } = harness(ts, { ...quiet, redundancy: 'auto' }, acks);
      cold('a 39ms (bcd)', { a: Buffer.alloc(1000), b: Buffer.alloc(1000), c: Buffer.alloc(1000), d: Buffer.alloc(1000) }).subscribe((m) => connection.send$.next(m));
      expectObservable(outgoing$, '^ 100ms !').toBe('a 19ms (aa) 16ms b 29ms b', { a: 'D0', b: 'D1' });
    });
  });

  it('is off with redundancy: off', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, { ...quiet, redundancy: 'off' }, hot('20ms r 9ms a', { r: repeat({ start: 0, end: 0 }), a: ack(1) }));
      cold('a 39ms b', { a: Buffer.from('x'), b: Buffer.from('y') }).subscribe((m) => connection.send$.next(m));
      expectObservable(outgoing$, '^ 100ms !').toBe('a 19ms a 19ms b', { a: 'D0', b: 'D1' });
    });
  });
});
