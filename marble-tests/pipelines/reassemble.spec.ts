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

  it('while a gap waits, a packet right after the highest is InOrder; one that opens another gap, or fills one, is Urgent (RFC 9000 §13.2.1)', () => {
    ts.run(({ hot, expectObservable }) => {
      const messages: string[] = [];
      const receiver = new Receiver({ receiveWindow: 16, maxMessageSize: 1000, payloadSize: 2 }, (m) => messages.push(Buffer.from(m).toString()));
      const op = reassemble({ receiver, scheduler: ts, counters: emptyCounters() });
      // 0 (quiet: urgent); 2 opens gap 1; 3 and 4 follow the highest; 6 opens gap 5; 5 fills it; 7 follows; 1 fills the last gap.
      const p = { a: data(0), b: data(2), c: data(3), d: data(4), e: data(6), f: data(5), g: data(7), h: data(1) };
      expectObservable(hot('(abcdefgh)', p).pipe(op)).toBe('(uuiiuuiu)', { u: Arrival.Urgent, i: Arrival.InOrder });
      ts.schedule(() => expect(messages).toEqual(['\x00', '\x01', '\x02', '\x03', '\x04', '\x05', '\x06', '\x07']), 20);
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
