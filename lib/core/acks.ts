import { Observable, type OperatorFunction, type SchedulerLike } from 'rxjs';
import { Deadline } from './deadline';

export interface AckCoalescingConfig {
  /** Longest an acknowledgement may wait (PROTOCOL.md §5: 5 ms). */
  readonly maxDelay: number;
  /** Acknowledge at once after this many packets. */
  readonly maxPending: number;
  readonly scheduler: SchedulerLike;
}

/**
 * Ack coalescing. The source emits `true` for a packet that must be acknowledged at once (out of
 * order, duplicate) and `false` for one that may wait; the result emits when a DATA_ACK is due:
 * at once, after `maxPending` packets, or `maxDelay` ms after the first unacknowledged one.
 */
export function coalesceAcks(config: AckCoalescingConfig): OperatorFunction<boolean, void> {
  const { maxDelay, maxPending, scheduler } = config;
  return (source) =>
    new Observable<void>((subscriber) => {
      let pending = 0;
      const flush = (): void => {
        pending = 0;
        deadline.clear();
        subscriber.next();
      };
      const deadline = new Deadline(scheduler, flush);
      const subscription = source.subscribe({
        next: (urgent) => {
          if (urgent || ++pending >= maxPending) flush();
          else if (pending === 1) deadline.set(scheduler.now() + maxDelay);
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
