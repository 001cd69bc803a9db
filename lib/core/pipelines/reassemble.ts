import { Observable, type OperatorFunction, type SchedulerLike } from 'rxjs';
import { CloseReason } from '../../wire/packet';
import { seqAdd } from '../../wire/serial';
import type { LanePacket } from '../channels/lanes';
import { MessageTooLargeError, ProtocolError } from '../errors';
import { DataOutcome, type Receiver } from '../receiver';
import type { ConnectionCounters } from '../stats';
import { relay } from './relay';

/** What one DATA packet did to the receive state, for the acknowledge and repeat pipelines. */
export const Arrival = {
  /** New and in order: its acknowledgement may wait for the coalescing delay. */
  InOrder: 0,
  /**
   * New, and the sender should hear at once: it opened a gap or filled one (RFC 5681 §4.2, RFC
   * 9000 §13.2.1), or it completed a message on a quiet connection, where waiting would coalesce
   * nothing and only cost 5 ms of the sender's RTT estimate. A packet that just follows the
   * highest one while a gap waits below tells the sender nothing new: it is InOrder (on a lossy
   * path a gap is nearly always open, and acknowledging each such packet doubled the datagrams).
   */
  Urgent: 1,
  /** Received before: acknowledged again (PROTOCOL.md §5). */
  Duplicate: 2,
  /** Beyond the receive window (or the listener's memory bound): dropped, answered with the current state. */
  OutsideWindow: 3,
} as const;
export type Arrival = (typeof Arrival)[keyof typeof Arrival];

export interface ReassembleConfig {
  /** The receive state; it hands whole messages, once each and in order, to its own `deliver`. */
  readonly receiver: Receiver;
  readonly scheduler: SchedulerLike;
  readonly counters: ConnectionCounters;
}

/** A DATA packet arriving this long after the previous one is on a quiet connection. */
const QUIET_GAP_MS = 1;

/**
 * DATA (and on a channels connection CHANNEL_DATA and ABANDON) → the receive window and
 * reassembly (PROTOCOL.md §4, docs/protocol.md §13.2). Emits each packet's `Arrival`;
 * errors with ProtocolError (a batch that contradicts itself: reason 2) or MessageTooLargeError
 * (beyond `maxMessageSize`: reason 3) — the connection closes with that reason.
 */
export function reassemble(config: ReassembleConfig): OperatorFunction<LanePacket, Arrival> {
  const { receiver, scheduler, counters } = config;
  return (data$) =>
    new Observable<Arrival>((subscriber) => {
      let lastDataAt = -Infinity;
      relay(data$, subscriber, (packet) => {
          counters.dataPacketsReceived++;
          const now = scheduler.now();
          const hadGaps = receiver.hasGaps;
          const next = seqAdd(receiver.highestReceived, 1);
          const delivered = receiver.messagesDelivered;
          const quietBefore = now - lastDataAt >= QUIET_GAP_MS;
          lastDataAt = now;
          switch (receiver.onData(packet, now)) {
            case DataOutcome.New: {
              const sparse = quietBefore && receiver.messagesDelivered !== delivered;
              const newsOfGaps = hadGaps || receiver.hasGaps ? packet.seq !== next || !receiver.hasGaps : false;
              subscriber.next(newsOfGaps || sparse ? Arrival.Urgent : Arrival.InOrder);
              return;
            }
            case DataOutcome.Duplicate:
              counters.duplicatesReceived++;
              subscriber.next(Arrival.Duplicate);
              return;
            case DataOutcome.OutsideWindow:
              counters.droppedDatagrams++;
              subscriber.next(Arrival.OutsideWindow);
              return;
            case DataOutcome.NoMemory:
              counters.droppedDatagrams++;
              counters.droppedForMemory++;
              subscriber.next(Arrival.OutsideWindow);
              return;
            case DataOutcome.Violation: {
              const v = receiver.violation!;
              subscriber.error(v.closeReason === CloseReason.MessageTooLarge ? new MessageTooLargeError(v.message) : new ProtocolError(v.message));
              return;
            }
          }
      });
    });
}
