import { TestScheduler } from 'rxjs/testing';
import { MessageTooLargeError, ProtocolError } from '../../lib/core/errors';
import { Arrival, reassemble } from '../../lib/core/pipelines/reassemble';
import { Receiver } from '../../lib/core/receiver';
import { emptyCounters } from '../../lib/core/stats';
import type { DataPacket } from '../../lib/wire/packet';
import { data as anyData } from '../harness';

const data = (...args: Parameters<typeof anyData>): DataPacket => anyData(...args) as DataPacket;

/** A receiver with a 4-packet window whose messages are collected as strings. */
function setup(ts: TestScheduler, maxMessageSize = 1000) {
  const messages: string[] = [];
  const receiver = new Receiver({ receiveWindow: 4, maxMessageSize, payloadSize: 2 }, (m) => messages.push(Buffer.from(m).toString()));
  return { messages, op: reassemble({ receiver, scheduler: ts, counters: emptyCounters() }) };
}

describe('reassemble (DATA → arrivals, whole messages to the receiver)', () => {
  let ts: TestScheduler;
  beforeEach(() => (ts = new TestScheduler((a, b) => expect(a).toEqual(b))));

  it('classifies each packet: in order, out of order, duplicate, beyond the window', () => {
    ts.run(({ hot, expectObservable }) => {
      const { op, messages } = setup(ts);
      // seq 0 (a message completed on a quiet connection: urgent), 1 in order right behind it in the
      // same millisecond, 3 out of order, 3 again, 9 beyond the window, 2 fills the gap.
      const p = { a: data(0), b: data(1), c: data(3), d: data(9), e: data(2) };
      expectObservable(hot('(ab) c c d e', p).pipe(op)).toBe('(ui) u D W u', { u: Arrival.Urgent, i: Arrival.InOrder, D: Arrival.Duplicate, W: Arrival.OutsideWindow });
      ts.schedule(() => expect(messages).toEqual(['\x00', '\x01', '\x02', '\x03']), 20);
    });
  });

  it('reassembles a batch of several packets into one message, in order', () => {
    ts.run(({ hot, expectObservable }) => {
      const { op, messages } = setup(ts);
      const part = (seq: number, index: number, text: string) => data(seq, 0, index, 3, Buffer.from(text));
      expectObservable(hot('a c b', { a: part(0, 0, 'he'), b: part(1, 1, 'll'), c: part(2, 2, 'o') }).pipe(op)).toBe('i u u', { i: Arrival.InOrder, u: Arrival.Urgent });
      ts.schedule(() => expect(messages).toEqual(['hello']), 10);
    });
  });

  it('errors with ProtocolError when packets of a batch disagree on count (reason 2)', () => {
    ts.run(({ hot, expectObservable }) => {
      const { op } = setup(ts);
      const p = { a: data(0, 0, 0, 3, Buffer.from('ab')), b: data(1, 0, 1, 2, Buffer.from('c')) };
      expectObservable(hot('a b', p).pipe(op)).toBe('i #', { i: Arrival.InOrder }, expect.any(ProtocolError));
    });
  });

  it('errors with MessageTooLargeError beyond maxMessageSize (reason 3)', () => {
    ts.run(({ hot, expectObservable }) => {
      const { op } = setup(ts, 3);
      expectObservable(hot('a', { a: data(0, 0, 0, 3, Buffer.from('ab')) }).pipe(op)).toBe('#', undefined, expect.any(MessageTooLargeError));
    });
  });
});
