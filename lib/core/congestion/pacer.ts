/**
 * A token bucket that spreads new packets at the controller's pacing rate, so a window never
 * leaves in one burst that overflows a queue on the path or the receiver's socket buffer. The
 * bucket holds `burstTime` ms of sending (at least `minimumBurst` bytes): timers fire about once a
 * millisecond, and an application that sends little at a time is never held back. A sender that
 * asked to be woken and was woken late (an event loop busy with acks for a few ms) keeps what
 * accrued in the delay, up to another bucket: it was waiting all along, and a bucket that
 * overflows meanwhile paces below the rate (measured: 14-19 % below with 2 ms wakes a little late).
 */
export class Pacer {
  private tokens = 0;
  private refilledAt = -Infinity;
  /** When readyAt told the sender to come back (Infinity: it was not waiting). */
  private wakeAt = Infinity;

  constructor(
    private readonly minimumBurst: number,
    private readonly burstTime: number,
  ) {}

  /** Whether `bytes` may leave now at `rate` bytes/ms. */
  maySend(bytes: number, rate: number, now: number): boolean {
    if (rate === Infinity) return true;
    this.refill(rate, now);
    // A byte's slack: refills in floating point fall short by 1e-12 bytes, and waiting for those
    // would be a wait of no time at all, re-armed for ever at the same instant.
    return this.tokens + 1 >= Math.min(bytes, this.capacity(rate));
  }

  /** Bytes that left now (resends too: they take their share of the rate). */
  spend(bytes: number, rate: number, now: number): void {
    if (rate === Infinity) return;
    this.refill(rate, now);
    this.tokens -= bytes;
  }

  /** When `bytes` may leave, at `rate` (after maySend said no: at least a byte's time ahead). */
  readyAt(bytes: number, rate: number, now: number): number {
    const missing = Math.min(bytes, this.capacity(rate)) - this.tokens;
    this.wakeAt = missing <= 0 ? now : now + missing / rate;
    return this.wakeAt;
  }

  private capacity(rate: number): number {
    return Math.max(this.minimumBurst, rate * this.burstTime);
  }

  private refill(rate: number, now: number): void {
    const capacity = this.capacity(rate);
    if (this.refilledAt === -Infinity) this.tokens = capacity;
    else if (now !== this.refilledAt) {
      const late = now > this.wakeAt ? Math.min(now - this.wakeAt, this.burstTime) * rate : 0;
      this.tokens = Math.min(capacity + late, this.tokens + (now - this.refilledAt) * rate);
    }
    this.wakeAt = Infinity;
    this.refilledAt = now;
  }
}
