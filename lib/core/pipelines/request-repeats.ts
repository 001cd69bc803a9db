import { Observable, type OperatorFunction, type SchedulerLike } from 'rxjs';
import { PacketType, type RepeatPacket } from '../../wire/packet';
import { Deadline } from '../deadline';
import type { Receiver } from '../receiver';
import type { RttEstimator } from '../rtt';
import type { Arrival } from './reassemble';
import { relay } from './relay';

export interface RequestRepeatsConfig {
  readonly connectionId: number;
  readonly receiver: Receiver;
  readonly rtt: RttEstimator;
  /** How long a gap may last before it is asked for (PROTOCOL.md §6). */
  readonly repeatDelay: number;
  readonly deliveryTimeout: number;
  readonly scheduler: SchedulerLike;
}

/**
 * Repeat requests (PROTOCOL.md §6). On each DATA arrival, and at one deadline, asks with REPEAT
 * for the gaps past the reorder threshold (3 later arrivals, or `repeatDelay` ms), and never
 * again for the same gap before a round trip could have answered it.
 */
export function requestRepeats(config: RequestRepeatsConfig): OperatorFunction<Arrival, RepeatPacket> {
  const { connectionId, receiver, rtt, repeatDelay, deliveryTimeout, scheduler } = config;
  return (arrivals$) =>
    new Observable<RepeatPacket>((subscriber) => {
      const ask = (now: number): void => {
        // "One round trip", plus one RTT deviation (a bare SRTT races the resend under jitter), and
        // never sooner than the RTO's floor: with a near-zero RTT estimate a packet that is always
        // lost would otherwise be asked for again at the same instant, forever.
        const reaskAfter = rtt.srtt === undefined ? deliveryTimeout / 2 : Math.max(rtt.srtt + rtt.rttvar, Math.min(10, deliveryTimeout));
        const ranges = receiver.takeRepeatRanges(now, repeatDelay, reaskAfter);
        if (ranges.length > 0) subscriber.next({ type: PacketType.Repeat, connectionId, ranges });
        deadline.set(receiver.nextRepeatTime(repeatDelay, reaskAfter));
      };
      const deadline = new Deadline(scheduler, ask, { afterInput: true });
      relay(arrivals$, subscriber, () => {
        if (receiver.hasGaps) ask(scheduler.now());
      });
      return () => deadline.dispose();
    });
}
