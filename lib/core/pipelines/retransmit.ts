import { Observable, type OperatorFunction, type SchedulerLike } from 'rxjs';
import type { DataAckPacket, RepeatPacket } from '../../wire/packet';
import { Deadline } from '../deadline';
import { ProtocolError } from '../errors';
import type { RttEstimator } from '../rtt';
import type { Sender, SentPacket } from '../sender';
import { relay } from './relay';

export interface RetransmitConfig {
  /** The send state: queued messages, packets in flight, windows. */
  readonly sender: Sender;
  readonly rtt: RttEstimator;
  readonly scheduler: SchedulerLike;
  /** The peer's DATA_ACKs: release packets, move the windows. */
  readonly acks$: Observable<DataAckPacket>;
  /** The peer's REPEATs: resend what they name, at once. */
  readonly repeats$: Observable<RepeatPacket>;
  /** Ticks when the address-validation budget lets more out (the source completing must not stop that). */
  readonly unblocked$: Observable<void>;
  /** Bytes that may leave now (the address-validation budget; Infinity once validated). */
  readonly allowance: () => number;
  /** Told of every resend and its cause (for `events$`). */
  readonly onResend?: (packet: SentPacket, cause: 'timeout' | 'repeat') => void;
  /** Told after an ack changed the bytes still buffered. */
  readonly onBufferedBytes?: (bytes: number) => void;
}

/**
 * Sending and retransmission (PROTOCOL.md §4–§6). The source ticks whenever more may be sent
 * (a message queued, the address validated); acks$ and repeats$ drive the sender's state, and one
 * deadline on the scheduler — the earliest retransmission timeout in flight, or the earliest ttl
 * of a message still unacknowledged — drives timeouts and expiry (abandoning); a second one
 * sends what the congestion controller's pacing held back. Emits every DATA
 * (or CHANNEL_DATA, ABANDON) packet to put on the wire, first sends and resends alike. Completes once the
 * source has completed and everything queued is acknowledged (a flushed close); errors with
 * ProtocolError when the peer acknowledges a packet never sent.
 */
export function retransmit(config: RetransmitConfig): OperatorFunction<void, SentPacket> {
  const { sender, rtt, scheduler, acks$, repeats$, unblocked$, allowance, onResend, onBufferedBytes } = config;
  return (ready$) =>
    new Observable<SentPacket>((subscriber) => {
      let sourceDone = false;
      sender.sink = { transmit: (packet) => subscriber.next(packet), resent: onResend ?? (() => undefined) };
      /** Messages whose ttl ran out are abandoned before anything else is sent or resent. */
      const expire = (now: number): void => {
        if (now < sender.nextExpiry) return;
        const buffered = sender.bufferedBytes;
        sender.expire(now);
        if (sender.bufferedBytes !== buffered) onBufferedBytes?.(sender.bufferedBytes);
      };
      /** The pacer held packets back: send them when it lets them go. */
      const paced = new Deadline(scheduler, (now) => pump(now));
      const pace = (): void => {
        if (sender.nextPaceAt !== Infinity) paced.setIfEarlier(sender.nextPaceAt);
      };
      const timer = new Deadline(
        scheduler,
        (now) => {
          expire(now);
          sender.onTimeout(now);
          sender.pump(now, allowance());
          pace();
          timer.set(Math.min(sender.nextDeadline(), sender.nextExpiry));
          if (sourceDone && sender.idle) subscriber.complete();
        },
        { afterInput: true },
      );
      /** After anything that may open the window or queue data: send what fits, keep the deadline honest. */
      const pump = (now: number): void => {
        sender.pump(now, allowance());
        pace();
        if (sender.inFlight > 0) timer.setIfEarlier(now + rtt.rto);
        timer.setIfEarlier(sender.nextExpiry);
        if (sourceDone && sender.idle) subscriber.complete();
      };
      const pumpNow = (): void => pump(scheduler.now());
      relay(acks$, subscriber, (ack) => {
        const now = scheduler.now();
        expire(now);
        const buffered = sender.bufferedBytes;
        if (!sender.onAck(ack, now)) return subscriber.error(new ProtocolError('peer acknowledged a DATA packet we never sent'));
        if (sender.bufferedBytes !== buffered) onBufferedBytes?.(sender.bufferedBytes);
        pump(now);
      });
      relay(repeats$, subscriber, (repeat) => {
        const now = scheduler.now();
        expire(now);
        sender.onRepeat(repeat.ranges, now);
        pump(now);
      });
      relay(unblocked$, subscriber, pumpNow, () => undefined);
      relay(ready$, subscriber, pumpNow, () => {
        sourceDone = true;
        pumpNow();
      });
      return () => {
        timer.dispose();
        paced.dispose();
        sender.sink = { transmit: () => undefined, resent: () => undefined };
      };
    });
}
