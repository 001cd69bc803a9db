import { TestScheduler } from 'rxjs/testing';
import { data, harness } from './harness';

const quiet = { pingInterval: 1_000_000 };

describe('acknowledgements', () => {
  let ts: TestScheduler;
  beforeEach(() => (ts = new TestScheduler((a, b) => expect(a).toEqual(b))));

  it('acknowledges a lone in-order packet within 5 ms', () => {
    ts.run(({ hot, expectObservable }) => {
      const { outgoing$ } = harness(ts, quiet, hot('a', { a: data(0) }));
      expectObservable(outgoing$, '^ 20ms !').toBe('5ms a', { a: 'A1' });
    });
  });

  it('coalesces in-order packets: one ack for every 8, sent at once', () => {
    ts.run(({ hot, expectObservable }) => {
      const packets = Object.fromEntries([...Array(9).keys()].map((i) => [String.fromCharCode(97 + i), data(i)]));
      const { outgoing$ } = harness(ts, quiet, hot('(abcdefghi)', packets));
      // the 8th packet triggers A8 at once; the 9th waits the 5 ms
      expectObservable(outgoing$, '^ 20ms !').toBe('a 4ms b', { a: 'A8', b: 'A9' });
    });
  });

  it('with a small receive window, acknowledges every half window', () => {
    ts.run(({ hot, expectObservable }) => {
      const { outgoing$ } = harness(ts, { ...quiet, receiveWindow: 4 }, hot('a 1ms b', { a: data(0), b: data(1) }));
      expectObservable(outgoing$, '^ 20ms !').toBe('2ms a', { a: 'A2' });
    });
  });

  it('re-acknowledges a duplicate at once and does not deliver it twice', () => {
    ts.run(({ hot, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, quiet, hot('a 9ms a', { a: data(0) }));
      expectObservable(outgoing$, '^ 20ms !').toBe('5ms a 4ms a', { a: 'A1' });
      expectObservable(connection.messages$, '^ 20ms !').toBe('m', { m: Buffer.from([0]) });
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
