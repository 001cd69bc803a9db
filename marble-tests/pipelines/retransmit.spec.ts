import { TestScheduler } from 'rxjs/testing';
import { EMPTY, NEVER, map, type Observable } from 'rxjs';
import { NewReno } from '../../lib/core/congestion/new-reno';
import { ProtocolError } from '../../lib/core/errors';
import { retransmit } from '../../lib/core/pipelines/retransmit';
import { RttEstimator } from '../../lib/core/rtt';
import { Sender, type SentPacket } from '../../lib/core/sender';
import { emptyCounters } from '../../lib/core/stats';
import type { DataAckPacket, RepeatPacket } from '../../lib/wire/packet';
import { ID, ack as anyAck, repeat as anyRepeat } from '../harness';

const ack = (...args: Parameters<typeof anyAck>) => anyAck(...args) as DataAckPacket;
const repeat = (...args: Parameters<typeof anyRepeat>) => anyRepeat(...args) as RepeatPacket;

/** A sender with `messages` one-packet messages queued, through retransmit with the given acks and repeats. */
function pipeline(ts: TestScheduler, messages: number, ready$: Observable<void>, acks$: Observable<DataAckPacket>, repeats$: Observable<RepeatPacket> = NEVER, peerWindow = 1024) {
  const rtt = new RttEstimator(200);
  const sender = new Sender(ID, { payloadSize: 1182 }, peerWindow, rtt, new NewReno(1200, 1200 * 65535), emptyCounters(), undefined);
  for (let i = 0; i < messages; i++) sender.enqueue(Buffer.from([i]));
  return ready$.pipe(
    retransmit({ sender, rtt, scheduler: ts, acks$, repeats$, unblocked$: NEVER, allowance: () => Infinity }),
    map((p: SentPacket) => `D${p.seq}`),
  );
}

describe('retransmit (queued messages, acks and repeats → DATA)', () => {
  let ts: TestScheduler;
  beforeEach(() => (ts = new TestScheduler((a, b) => expect(a).toEqual(b))));

  it('sends what is queued when the source ticks, and completes once the source completed and all is acknowledged', () => {
    ts.run(({ cold, hot, expectObservable }) => {
      const out$ = pipeline(ts, 2, cold('(a|)', { a: undefined }), hot('10ms a', { a: ack(2) }));
      expectObservable(out$).toBe('(xy) 6ms |', { x: 'D0', y: 'D1' });
    });
  });

  it('resends an unacknowledged packet after deliveryTimeout, then backs off (200, 400 ms)', () => {
    ts.run(({ cold, expectObservable }) => {
      const out$ = pipeline(ts, 1, cold('a', { a: undefined }), NEVER);
      expectObservable(out$, '^ 700ms !').toBe('a 199ms a 399ms a', { a: 'D0' });
    });
  });

  it('resends what a REPEAT names at once, without waiting for the timeout', () => {
    ts.run(({ cold, hot, expectObservable }) => {
      const out$ = pipeline(ts, 3, cold('a', { a: undefined }), hot('5ms a', { a: ack(0, [{ start: 1, end: 2 }]) }), hot('8ms r', { r: repeat({ start: 0, end: 0 }) }));
      expectObservable(out$, '^ 20ms !').toBe('(abc) 3ms a', { a: 'D0', b: 'D1', c: 'D2' }); // the group spans frames 0-4: D0 again at 8
    });
  });

  it('sends no more than the peer window allows, and the rest as acks open it', () => {
    ts.run(({ cold, hot, expectObservable }) => {
      const out$ = pipeline(ts, 3, cold('a', { a: undefined }), hot('10ms a', { a: ack(1, [], 2) }), NEVER, 1);
      expectObservable(out$, '^ 20ms !').toBe('a 9ms (bc)', { a: 'D0', b: 'D1', c: 'D2' });
    });
  });

  it('errors with ProtocolError when an ack names a packet never sent', () => {
    ts.run(({ cold, hot, expectObservable }) => {
      const out$ = pipeline(ts, 1, cold('a', { a: undefined }), hot('5ms a', { a: ack(7) }));
      expectObservable(out$).toBe('a 4ms #', { a: 'D0' }, new ProtocolError('peer acknowledged a DATA packet we never sent'));
    });
  });

  it('completes at once when nothing was queued and the source completes', () => {
    ts.run(({ expectObservable }) => {
      expectObservable(pipeline(ts, 0, EMPTY, NEVER)).toBe('|');
    });
  });
});
