import { TestScheduler } from 'rxjs/testing';
import { map } from 'rxjs';
import { ConnectionTimeoutError, MessageTooLargeError, ProtocolError } from '../../lib/core/errors';
import { failureEnding, peerClosed } from '../../lib/core/pipelines/close';
import { receiveDirect } from '../../lib/core/pipelines/direct';
import { emptyCounters } from '../../lib/core/stats';
import { PacketType, type DirectPacket } from '../../lib/wire/packet';

describe('the close path: one typed Ending for every way a connection ends', () => {
  it('a pipeline error closes with the reason that says what happened, never 0', () => {
    expect(failureEnding(new ConnectionTimeoutError(6000))).toMatchObject({ reason: 1, text: 'no answer to pings', notifyPeer: true });
    expect(failureEnding(new ProtocolError('batch 3 disagrees'))).toMatchObject({ reason: 2, text: 'batch 3 disagrees' });
    expect(failureEnding(new MessageTooLargeError('too big'))).toMatchObject({ reason: 3, text: 'too big' });
    const internal = failureEnding(new TypeError('x is undefined'));
    expect(internal).toMatchObject({ reason: 2, text: 'internal error: x is undefined' });
    expect(internal.error).toBeInstanceOf(ProtocolError);
  });

  it("the peer's CLOSE ends at once without an answer; reason 0 has no error", () => {
    expect(peerClosed({ type: PacketType.Close, connectionId: 1, reason: 0, text: '' })).toEqual({ reason: 0, text: '', byPeer: true, notifyPeer: false, error: undefined });
    expect(peerClosed({ type: PacketType.Close, connectionId: 1, reason: 1, text: 'bye' }).error).toBeInstanceOf(ConnectionTimeoutError);
  });
});

describe('receiveDirect', () => {
  it('hands DIRECT payloads on as they arrive, counted', () => {
    const ts = new TestScheduler((a, b) => expect(a).toEqual(b));
    ts.run(({ hot, expectObservable }) => {
      const counters = emptyCounters();
      const d = (text: string): DirectPacket => ({ type: PacketType.Direct, connectionId: 1, payload: Buffer.from(text) });
      expectObservable(hot('a b', { a: d('x'), b: d('y') }).pipe(receiveDirect(counters), map((p) => Buffer.from(p).toString()))).toBe('a b', { a: 'x', b: 'y' });
      ts.schedule(() => expect(counters.directReceived).toBe(2), 5);
    });
  });
});
