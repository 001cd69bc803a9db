import { Observable, map, type OperatorFunction, type SchedulerLike } from 'rxjs';
import { ProbePacketType, type ProbeAckPacket, type ProbePacket } from '../../wire/path-mtu';
import { Deadline } from '../deadline';
import type { PathMtuSearch } from '../path-mtu/search';
import type { RttEstimator } from '../rtt';
import { relay } from './relay';

export interface ProbePathConfig {
  readonly connectionId: number;
  readonly search: PathMtuSearch;
  readonly rtt: RttEstimator;
  readonly scheduler: SchedulerLike;
  /** The peer's PROBE_ACKs. */
  readonly probeAcks$: Observable<ProbeAckPacket>;
  /** Whether a search is worth starting now: more than one packet's worth waits to be sent, and the peer's address is proven. */
  readonly wanted: () => boolean;
  /** DATA may now be `size` bytes. */
  readonly onRaised: (size: number) => void;
}

/**
 * Path-MTU probing (docs/protocol.md §13.3). The source ticks as messages are queued; the first
 * tick at which `wanted()` holds starts the search, so connections that only ever send small
 * messages never probe. One PROBE at a time: the next size when it is acknowledged, the same
 * size again after a probe timeout (the RTO) without an answer, until the search is over.
 */
export function probePath(config: ProbePathConfig): OperatorFunction<unknown, ProbePacket> {
  const { connectionId, search, rtt, scheduler, probeAcks$, wanted, onRaised } = config;
  return (queued$) =>
    new Observable<ProbePacket>((subscriber) => {
      let started = false;
      let probeId = 0;
      const sendNext = (): void => {
        const size = search.probeSize;
        if (size === undefined) return deadline.dispose();
        probeId = (probeId + 1) >>> 0;
        subscriber.next({ type: ProbePacketType.Probe, connectionId, probeId, size });
        deadline.set(scheduler.now() + rtt.rto);
      };
      const deadline = new Deadline(
        scheduler,
        () => {
          search.probeLost();
          sendNext();
        },
        { afterInput: true },
      );
      relay(
        probeAcks$,
        subscriber,
        (ack) => {
          if (!started || ack.probeId !== probeId || !search.probeAcked(ack.size)) return;
          onRaised(ack.size);
          sendNext();
        },
        () => undefined,
      );
      relay(queued$, subscriber, () => {
        if (started || !wanted()) return;
        started = true;
        sendNext();
      });
      return () => deadline.dispose();
    });
}

/** Answers every PROBE with a PROBE_ACK naming its id and the size that arrived. */
export function answerProbes(): OperatorFunction<ProbePacket, ProbeAckPacket> {
  return map((probe) => ({ type: ProbePacketType.ProbeAck, connectionId: probe.connectionId, probeId: probe.probeId, size: probe.size }));
}
