import { TestScheduler } from 'rxjs/testing';
import { MessageTooLargeError, ProtocolError } from '../lib/core/errors';
import { ack, data, harness } from './harness';

const quiet = { pingInterval: 1_000_000 };

describe('protocol violations and limits close the connection with a reason', () => {
  let ts: TestScheduler;
  beforeEach(() => (ts = new TestScheduler((a, b) => expect(a).toEqual(b))));

  it('a message larger than maxMessageSize: CLOSE reason 3 and MessageTooLargeError, as soon as its size is known', () => {
    ts.run(({ hot, expectObservable }) => {
      // 10 packets of 1182 bytes make at least 10,639 bytes > 10,000
      const { connection, outgoing$ } = harness(ts, { ...quiet, maxMessageSize: 10_000 }, hot('a', { a: data(0, 0, 0, 10, Buffer.alloc(1182)) }));
      expectObservable(outgoing$, '^ 20ms !').toBe('(cc)', { c: 'C3' });
      expectObservable(connection.messages$).toBe('#', undefined, new MessageTooLargeError('incoming message of at least 10639 bytes exceeds maxMessageSize 10000'));
    });
  });

  it('packets of one batch disagreeing on count: CLOSE reason 2 and ProtocolError', () => {
    ts.run(({ hot, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, quiet, hot('a b', { a: data(0, 0, 0, 3, Buffer.alloc(1182)), b: data(1, 0, 1, 2, Buffer.alloc(1)) }));
      expectObservable(outgoing$, '^ 20ms !').toBe('-(cc)', { c: 'C2' });
      expectObservable(connection.messages$).toBe('-#', undefined, new ProtocolError('batch 0: packet 1 has batch 0 index 1/2, expected index 1/3'));
    });
  });

  it('a batch that does not start at index 0: CLOSE reason 2', () => {
    ts.run(({ hot, expectObservable }) => {
      const { outgoing$ } = harness(ts, quiet, hot('a', { a: data(0, 0, 1, 2) }));
      expectObservable(outgoing$, '^ 20ms !').toBe('(cc)', { c: 'C2' });
    });
  });

  it('an ack for a packet never sent: CLOSE reason 2', () => {
    ts.run(({ hot, expectObservable }) => {
      const { outgoing$ } = harness(ts, quiet, hot('5ms a', { a: ack(3) }));
      expectObservable(outgoing$, '^ 20ms !').toBe('5ms (cc)', { c: 'C2' });
    });
  });

  it('a stale, reordered ack releases nothing above its cumulative', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      // D0..D3 sent; ack(2) releases D0, D1; the older ack(1) arrives later and must not release D2, D3,
      // which time out one RTO after the last ack that made progress (10 + RTO 30 from the 10 ms sample)
      const { connection, outgoing$ } = harness(ts, { ...quiet, deliveryTimeout: 200 }, hot('10ms a 4ms b', { a: ack(2), b: ack(1) }));
      cold('(abcd)', { a: Buffer.from('a'), b: Buffer.from('b'), c: Buffer.from('c'), d: Buffer.from('d') }).subscribe((m) => connection.send$.next(m));
      expectObservable(outgoing$, '^ 45ms !').toBe('(abcd) 34ms (cd)', { a: 'D0', b: 'D1', c: 'D2', d: 'D3' }); // the earliest, and the newest as a probe
    });
  });
});
