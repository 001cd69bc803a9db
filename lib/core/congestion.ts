/**
 * Congestion control behind a small interface, so a better controller can replace NewReno.
 * Windows count packets, not bytes: every DATA but a batch's last is full-sized.
 */
export interface CongestionController {
  /** Packets that may be in flight now. */
  readonly window: number;
  /** `count` packets newly acknowledged; `now` is the scheduler's clock. */
  onAcked(count: number, now: number): void;
  /** A packet first sent at `sentAt` is known lost (REPEAT named it). */
  onLoss(sentAt: number, now: number): void;
  /** The retransmission timer fired. */
  onTimeout(now: number): void;
}

export const INITIAL_WINDOW = 10;
export const MINIMUM_WINDOW = 2;

/**
 * NewReno in spirit (RFC 5681, RFC 9002 §7): slow start, congestion avoidance, one halving per
 * round of losses (losses of packets sent before the recovery began do not halve again), and a
 * collapse to the minimum window on a retransmission timeout.
 */
export class NewReno implements CongestionController {
  private cwnd = INITIAL_WINDOW;
  private ssthresh = Infinity;
  private recoveryStart = -Infinity;

  constructor(private readonly maxWindow: number) {}

  get window(): number {
    return Math.min(this.maxWindow, Math.floor(this.cwnd));
  }

  onAcked(count: number): void {
    if (this.cwnd >= this.maxWindow) return;
    if (this.cwnd < this.ssthresh) this.cwnd += count;
    else this.cwnd += count / this.cwnd;
  }

  onLoss(sentAt: number, now: number): void {
    if (sentAt <= this.recoveryStart) return;
    this.recoveryStart = now;
    this.ssthresh = Math.max(this.cwnd / 2, MINIMUM_WINDOW);
    this.cwnd = this.ssthresh;
  }

  onTimeout(now: number): void {
    this.recoveryStart = now;
    this.ssthresh = Math.max(this.cwnd / 2, MINIMUM_WINDOW);
    this.cwnd = MINIMUM_WINDOW;
  }
}
