import { Observable, map, type OperatorFunction, type SchedulerLike } from 'rxjs';
import { PacketType, type PingAckPacket, type PingPacket } from '../../wire/packet';
import { Deadline } from '../deadline';
import { ConnectionTimeoutError } from '../errors';
import type { RttEstimator } from '../rtt';
import { relay } from './relay';

export interface HeartbeatConfig {
  readonly pingInterval: number;
  readonly pingPacketCount: number;
  readonly scheduler: SchedulerLike;
  /** When DATA last left or arrived (scheduler clock; -Infinity if never): a connection carrying data skips the first PING. */
  readonly lastDataAt?: () => number;
}

/**
 * Keep-alive (PROTOCOL.md §7). The source ticks once per valid packet from the peer. Counting from
 * the last tick, emits the ordinal of each PING to send at 1 ×, 2 × … `pingPacketCount` ×
 * `pingInterval`, and errors with ConnectionTimeoutError at (`pingPacketCount` + 1) × `pingInterval`.
 * One lazy timer: a tick only records the time, so busy connections cost no timer churn.
 *
 * A connection that carried DATA in the `pingInterval` before the silence began skips the 1 ×
 * PING (when `pingPacketCount` > 1): application traffic every `pingInterval` (a message a second,
 * the default interval) would otherwise arrive just after the deadline half the time, and every
 * such connection would add a PING and a PING_ACK per message. Its data gets acknowledged, which
 * proves the peer alive; a dead peer is still pinged from 2 × on and declared dead at the same time.
 */
export function heartbeat(config: HeartbeatConfig): OperatorFunction<unknown, number> {
  const { pingInterval, pingPacketCount, scheduler, lastDataAt } = config;
  return (alive$) =>
    new Observable<number>((subscriber) => {
      let lastHeard = scheduler.now();
      let pings = 0;
      const deadline = new Deadline(
        scheduler,
        (now) => {
          const silentFor = now - lastHeard;
          const due = Math.floor(silentFor / pingInterval);
          if (due > pingPacketCount) {
            subscriber.error(new ConnectionTimeoutError(silentFor));
            return;
          }
          if (due > pings) {
            const skip = due === 1 && pingPacketCount > 1 && lastDataAt !== undefined && lastDataAt() >= lastHeard - pingInterval;
            pings = due;
            if (!skip) subscriber.next(due);
          }
          deadline.set(lastHeard + (pings + 1) * pingInterval);
        },
        { afterInput: true },
      );
      deadline.set(lastHeard + pingInterval);
      relay(alive$, subscriber, () => {
        lastHeard = scheduler.now();
        pings = 0;
      });
      return () => deadline.dispose();
    });
}

export interface KeepAliveConfig extends HeartbeatConfig {
  readonly connectionId: number;
  /** The peer's PING_ACKs: each answers our latest PING once, and gives one RTT sample. */
  readonly pingAcks$: Observable<PingAckPacket>;
  readonly rtt: RttEstimator;
}

/**
 * The PING side of PROTOCOL.md §7: the source ticks once per valid packet from the peer; emits
 * PING packets by the heartbeat's schedule and errors with ConnectionTimeoutError when the peer
 * stays silent. A PING_ACK echoing the latest nonce gives one RTT sample (a duplicated one, none).
 */
export function keepAlive(config: KeepAliveConfig): OperatorFunction<unknown, PingPacket> {
  const { connectionId, pingAcks$, rtt, scheduler } = config;
  return (heard$) =>
    new Observable<PingPacket>((subscriber) => {
      let nonce = 0;
      let sentAt = 0;
      let outstanding = false;
      relay(
        pingAcks$,
        subscriber,
        (ack) => {
          if (!outstanding || ack.nonce !== nonce) return;
          outstanding = false;
          rtt.sample(scheduler.now() - sentAt);
        },
        () => undefined,
      );
      relay(heard$.pipe(heartbeat(config)), subscriber, () => {
        nonce = (nonce + 1) >>> 0;
        sentAt = scheduler.now();
        outstanding = true;
        subscriber.next({ type: PacketType.Ping, connectionId, nonce });
      });
    });
}

/** Answers every PING with a PING_ACK echoing its nonce, at once (PROTOCOL.md §7). */
export function answerPings(): OperatorFunction<PingPacket, PingAckPacket> {
  return map((ping) => ({ type: PacketType.PingAck, connectionId: ping.connectionId, nonce: ping.nonce }));
}
