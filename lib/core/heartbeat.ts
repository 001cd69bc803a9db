import { Observable, type OperatorFunction, type SchedulerLike } from 'rxjs';
import { Deadline } from './deadline';
import { ConnectionTimeoutError } from './errors';

export interface HeartbeatConfig {
  readonly pingInterval: number;
  readonly pingPacketCount: number;
  readonly scheduler: SchedulerLike;
}

/**
 * Keep-alive (PROTOCOL.md §7). The source ticks once per valid packet from the peer. Counting from
 * the last tick, emits the ordinal of each PING to send at 1 ×, 2 × … `pingPacketCount` ×
 * `pingInterval`, and errors with ConnectionTimeoutError at (`pingPacketCount` + 1) × `pingInterval`.
 * One lazy timer: a tick only records the time, so busy connections cost no timer churn.
 */
export function heartbeat(config: HeartbeatConfig): OperatorFunction<unknown, number> {
  const { pingInterval, pingPacketCount, scheduler } = config;
  return (alive$) =>
    new Observable<number>((subscriber) => {
      let lastHeard = scheduler.now();
      let pings = 0;
      const deadline = new Deadline(scheduler, (now) => {
        const silentFor = now - lastHeard;
        const due = Math.floor(silentFor / pingInterval);
        if (due > pingPacketCount) {
          subscriber.error(new ConnectionTimeoutError(silentFor));
          return;
        }
        if (due > pings) {
          pings = due;
          subscriber.next(due);
        }
        deadline.set(lastHeard + (pings + 1) * pingInterval);
      });
      deadline.set(lastHeard + pingInterval);
      const subscription = alive$.subscribe({
        next: () => {
          lastHeard = scheduler.now();
          pings = 0;
        },
        error: (err: unknown) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
      return () => {
        subscription.unsubscribe();
        deadline.dispose();
      };
    });
}
