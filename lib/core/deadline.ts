import type { SchedulerLike } from 'rxjs';
import { TimerQueue, type TimerEntry } from './timer-queue';

/**
 * How late (ms) a deadline made `afterInput` may come due before it waits one more turn. Timers of
 * a real-time scheduler run a millisecond or so late; much later means the process was busy.
 */
const LATE_MS = 4;

export interface DeadlineOptions {
  /**
   * When the deadline comes due more than LATE_MS late, the process was busy (a GC pause, a long
   * task) and input that arrived meanwhile is still unread: Node runs due timers before it reads
   * sockets. A decision that input may make moot (resend a packet whose ack is waiting, ask again
   * for a packet that is waiting, call a peer dead whose PING is waiting) then waits for the next
   * turn of the scheduler, which comes after that input. Virtual time is never late: no change there.
   */
  readonly afterInput?: boolean;
}

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
  private readonly afterInput: boolean;
  /** Came due late and waited a turn (afterInput); only set() starts a new wait, as only set() arms a new time. */
  private yielded = false;

  constructor(
    private readonly scheduler: SchedulerLike,
    private readonly onDue: (now: number) => void,
    options?: DeadlineOptions,
  ) {
    this.queue = TimerQueue.for(scheduler);
    this.afterInput = options?.afterInput === true;
  }

  get time(): number {
    return this.due;
  }

  /** Fire at `time` (scheduler clock, ms); replaces any earlier request. */
  set(time: number): void {
    this.due = time;
    this.yielded = false;
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
    if (this.afterInput && !this.yielded && now - this.due > LATE_MS) {
      this.yielded = true;
      this.queue.add(this, now); // armed while the queue runs: the next action, after pending input
      return;
    }
    this.due = Infinity;
    this.onDue(now);
  }
}
