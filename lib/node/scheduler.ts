import { asyncScheduler, type SchedulerAction, type SchedulerLike, type Subscription } from 'rxjs';
import { performance } from 'node:perf_hooks';

/**
 * The default real-time scheduler of the Node transport: rxjs's `asyncScheduler` with a
 * sub-millisecond clock.
 *
 * Why not `asyncScheduler` itself: its `now()` is `Date.now()`, whole milliseconds. On loopback
 * and LAN links a round trip takes tens to hundreds of microseconds, so RTT samples would be
 * 0 or 1 ms, and the smoothed RTT / RTO derived from them would be meaningless. `performance.now()`
 * has microsecond resolution and is monotonic (wall-clock adjustments do not make time go back).
 *
 * `now()` is `performance.timeOrigin + performance.now()`: the monotonic clock, offset so that it
 * reads milliseconds since the epoch like `Date.now()` (still ~0.25 µs resolution at that
 * magnitude). Only differences matter to the protocol, but keeping the epoch offset means rxjs
 * operators given a `Date` (`timer(date, s)`, `timeout({ first: date, … })`) still compute a
 * sensible delay (up to the drift between the monotonic and the wall clock since process start).
 *
 * `schedule()` delegates to `asyncScheduler.schedule`, so actions (delays, rescheduling,
 * `setInterval` reuse, cancellation) behave exactly as with `asyncScheduler`; only the clock
 * differs. Pending actions keep the process alive exactly as long as their timers do.
 */
export const realTimeScheduler: SchedulerLike = {
  now(): number {
    return performance.timeOrigin + performance.now();
  },
  schedule<T>(work: (this: SchedulerAction<T>, state: T) => void, delay?: number, state?: T): Subscription {
    return asyncScheduler.schedule(work as (this: SchedulerAction<T>, state?: T) => void, delay, state);
  },
};
