import type { SchedulerLike, Subscription } from 'rxjs';

/**
 * One re-armable timer on an injected scheduler. Moving the deadline later costs nothing (the timer
 * fires early, sees it is not due and re-arms); only moving it earlier reschedules. This is how a
 * connection keeps ONE retransmission timer instead of one per packet.
 */
export class Deadline {
  private due = Infinity;
  private armedFor = Infinity;
  private action: Subscription | undefined;

  constructor(
    private readonly scheduler: SchedulerLike,
    private readonly onDue: (now: number) => void,
  ) {}

  get time(): number {
    return this.due;
  }

  /** Fire at `time` (scheduler clock, ms); replaces any earlier request. */
  set(time: number): void {
    this.due = time;
    if (time < this.armedFor) this.arm();
  }

  /** Fire at `time` unless already due earlier. */
  setIfEarlier(time: number): void {
    if (time < this.due) this.set(time);
  }

  clear(): void {
    this.due = Infinity;
  }

  /** Releases the scheduled action; the deadline can be set again later. */
  dispose(): void {
    this.due = Infinity;
    this.disarm();
  }

  private arm(): void {
    this.disarm();
    if (this.due === Infinity) return;
    const delay = Math.max(0, Math.ceil(this.due - this.scheduler.now()));
    this.armedFor = this.due;
    this.action = this.scheduler.schedule(() => this.fire(), delay);
  }

  private disarm(): void {
    this.armedFor = Infinity;
    const action = this.action;
    this.action = undefined;
    action?.unsubscribe();
  }

  private fire(): void {
    this.armedFor = Infinity;
    this.action = undefined;
    if (this.due === Infinity) return;
    const now = this.scheduler.now();
    if (now < this.due) {
      this.arm();
      return;
    }
    this.due = Infinity;
    this.onDue(now);
  }
}
