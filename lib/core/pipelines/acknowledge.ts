import { Observable, type OperatorFunction, type SchedulerLike } from 'rxjs';
import { PacketType, type DataAckPacket } from '../../wire/packet';
import { Deadline } from '../deadline';
import type { Receiver } from '../receiver';
import { Arrival } from './reassemble';
import { relay } from './relay';

/** Ask for a DATA_ACK now, for a reason other than a DATA packet: the starter's greeting, a window that reopened. */
export const ACK_NOW = -1;
export type AckTrigger = Arrival | typeof ACK_NOW;

export interface AcknowledgeConfig {
  readonly connectionId: number;
  /** The receive state the acknowledgements describe. */
  readonly receiver: Receiver;
  /** Longest an acknowledgement may wait (PROTOCOL.md §5: 5 ms). */
  readonly maxDelay: number;
  /** Acknowledge at once after this many packets of the version-1 size (fewer when they are larger: see Receiver.placesPerPacket). */
  readonly maxPending: number;
  readonly scheduler: SchedulerLike;
}

/** A duplicate arriving this soon after our last ack is a copy right behind it (redundant sends), not a sign the ack was lost. */
const COPY_GAP_MS = 1;

/**
 * Acknowledgements (PROTOCOL.md §5): every DATA is acknowledged, new or duplicate. In-order
 * packets are coalesced — a DATA_ACK after `maxPending` of them or `maxDelay` ms after the first —
 * while out-of-order packets, packets beyond the window and duplicates (our ack was probably lost)
 * are acknowledged at once. A duplicate right behind the ack that covered it may wait: that keeps
 * redundant copies from doubling the acks. One deadline, re-armed lazily.
 */
export function acknowledge(config: AcknowledgeConfig): OperatorFunction<AckTrigger, DataAckPacket> {
  const { connectionId, receiver, maxDelay, maxPending, scheduler } = config;
  return (triggers$) =>
    new Observable<DataAckPacket>((subscriber) => {
      let pending = 0;
      let lastAckAt = -Infinity;
      const flush = (): void => {
        pending = 0;
        deadline.clear();
        lastAckAt = scheduler.now();
        subscriber.next({ type: PacketType.DataAck, connectionId, cumulative: receiver.cumulative, window: receiver.window, ranges: receiver.ackRanges() });
      };
      const deadline = new Deadline(scheduler, flush);
      relay(triggers$, subscriber, (trigger) => {
        const mayWait = trigger === Arrival.InOrder || (trigger === Arrival.Duplicate && scheduler.now() - lastAckAt < COPY_GAP_MS);
        // Counted in window places, so larger packets are acknowledged as often per byte: a sender
        // with a few 64 KiB packets in flight must not wait maxDelay for every acknowledgement.
        if (!mayWait || (pending += receiver.placesPerPacket) >= maxPending) flush();
        else if (deadline.time === Infinity) deadline.set(scheduler.now() + maxDelay);
      });
      return () => deadline.dispose();
    });
}
