import type { SchedulerLike } from 'rxjs';
import { TimerQueue, type TimerEntry } from './timer-queue';

/**
 * One re-armable timer on an injected scheduler. Moving the deadline later costs nothing (the timer
 * fires early, sees it is not due and re-arms); only moving it earlier reschedules. This is how a
 * connection keeps ONE retransmission timer instead of one per packet. Every Deadline of one
 * scheduler lives in that scheduler's TimerQueue: one scheduled action for all of them.
 */
export class Deadline implements TimerEntry {
  private due = Infinity;
  /** @internal TimerEntry: when the queue runs it (Infinity: not queued). */
  at = Infinity;
  /** @internal TimerEntry */
  order = 0;
  /** @internal TimerEntry */
  slot = -1;
  private readonly queue: TimerQueue;

  constructor(
    private readonly scheduler: SchedulerLike,
    private readonly onDue: (now: number) => void,
  ) {
    this.queue = TimerQueue.for(scheduler);
  }

  get time(): number {
    return this.due;
  }

  /** Fire at `time` (scheduler clock, ms); replaces any earlier request. */
  set(time: number): void {
    this.due = time;
    if (time < this.at && time !== Infinity) this.queue.add(this, time);
  }

  /** Fire at `time` unless already due earlier. */
  setIfEarlier(time: number): void {
    if (time < this.due) this.set(time);
  }

  clear(): void {
    this.due = Infinity;
  }

  /** Leaves the queue; the deadline can be set again later. */
  dispose(): void {
    this.due = Infinity;
    this.queue.remove(this);
  }

  /** @internal TimerEntry: the queue's call once `at` has come. */
  run(now: number): void {
    if (this.due === Infinity) return;
    if (now < this.due) {
      this.queue.add(this, this.due);
      return;
    }
    this.due = Infinity;
    this.onDue(now);
  }
}
