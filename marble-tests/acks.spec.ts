import { TestScheduler } from 'rxjs/testing';
import { data, harness } from './harness';

const quiet = { pingInterval: 1_000_000 };

describe('acknowledgements', () => {
  let ts: TestScheduler;
  beforeEach(() => (ts = new TestScheduler((a, b) => expect(a).toEqual(b))));

  it('acknowledges a message completed on a quiet connection at once (nothing to coalesce with)', () => {
    ts.run(({ hot, expectObservable }) => {
      const { outgoing$ } = harness(ts, quiet, hot('a', { a: data(0) }));
      expectObservable(outgoing$, '^ 20ms !').toBe('a', { a: 'A1' });
    });
  });

  it('acknowledges a lone packet of an unfinished message within 5 ms', () => {
    ts.run(({ hot, expectObservable }) => {
      const { outgoing$ } = harness(ts, quiet, hot('a', { a: data(0, 0, 0, 2, Buffer.alloc(1182)) }));
      expectObservable(outgoing$, '^ 20ms !').toBe('5ms a', { a: 'A1' });
    });
  });

  it('coalesces a burst: one ack for every 8 packets, sent at once, the rest within 5 ms', () => {
    ts.run(({ hot, expectObservable }) => {
      const packets = Object.fromEntries([...Array(10).keys()].map((i) => [String.fromCharCode(97 + i), data(i)]));
      const { outgoing$ } = harness(ts, quiet, hot('(abcdefghij)', packets));
      // the first completes a message on a quiet connection (at once); the next 8 make A9; the 10th waits
      expectObservable(outgoing$, '^ 20ms !').toBe('(xy) 1ms z', { x: 'A1', y: 'A9', z: 'A10' });
    });
  });

  it('with a small receive window, acknowledges every half window', () => {
    ts.run(({ hot, expectObservable }) => {
      const part = (i: number) => data(i, 0, i, 3, Buffer.alloc(1182));
      const { outgoing$ } = harness(ts, { ...quiet, receiveWindow: 4 }, hot('a b', { a: part(0), b: part(1) }));
      expectObservable(outgoing$, '^ 20ms !').toBe('-a', { a: 'A2' });
    });
  });

  it('re-acknowledges a duplicate at once and does not deliver it twice', () => {
    ts.run(({ hot, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, quiet, hot('a 9ms a', { a: data(0) }));
      expectObservable(outgoing$, '^ 20ms !').toBe('a 9ms a', { a: 'A1' });
      expectObservable(connection.messages$, '^ 20ms !').toBe('m', { m: Buffer.from([0]) });
    });
  });

  it('acks again, within the 5 ms coalescing bound, a copy right behind the ack that covered it (PROTOCOL.md §5)', () => {
    ts.run(({ hot, expectObservable }) => {
      const { outgoing$ } = harness(ts, quiet, hot('(aa)', { a: data(0) }));
      expectObservable(outgoing$, '^ 20ms !').toBe('a 4ms a', { a: 'A1' });
    });
  });

  it('drops a packet beyond the receive window and answers with its state', () => {
    ts.run(({ hot, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, { ...quiet, receiveWindow: 4 }, hot('a', { a: data(4) }));
      expectObservable(outgoing$, '^ 20ms !').toBe('a', { a: 'A0' });
      expectObservable(connection.messages$, '^ 20ms !').toBe('');
    });
  });
});
