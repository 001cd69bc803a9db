/**
 * Congestion control behind a small interface, so a better controller can replace NewReno.
 * Windows count bytes on the wire, as in RFC 9002 §7: small messages (one packet each, since a
 * batch is one message) must not be throttled as if every packet were full-sized.
 */
export interface CongestionController {
  /** Bytes that may be in flight now. */
  readonly window: number;
  /** `bytes` newly acknowledged; `now` is the scheduler's clock. */
  onAcked(bytes: number, now: number): void;
  /** A packet last sent at `sentAt` is known lost (REPEAT named it, or its timeout fired once). */
  onLoss(sentAt: number, now: number): void;
  /** Persistent loss: a packet timed out again. */
  onTimeout(now: number): void;
}

export const INITIAL_WINDOW_PACKETS = 10;
export const MINIMUM_WINDOW_PACKETS = 2;

/**
 * NewReno in spirit (RFC 5681, RFC 9002 §7): slow start, congestion avoidance, one reduction per
 * round of losses (losses of packets sent before the recovery began do not reduce again), and a
 * collapse to the minimum window on persistent loss.
 */
export class NewReno implements CongestionController {
  private cwnd: number;
  private ssthresh = Infinity;
  private recoveryStart = -Infinity;
  private readonly minimum: number;

  constructor(
    private readonly datagramSize: number,
    private readonly maxWindow: number,
  ) {
    this.cwnd = INITIAL_WINDOW_PACKETS * datagramSize;
    this.minimum = MINIMUM_WINDOW_PACKETS * datagramSize;
  }

  get window(): number {
    return Math.min(this.maxWindow, Math.floor(this.cwnd));
  }

  onAcked(bytes: number): void {
    if (this.cwnd >= this.maxWindow) return;
    if (this.cwnd < this.ssthresh) this.cwnd += bytes;
    else this.cwnd += (this.datagramSize * bytes) / this.cwnd;
  }

  onLoss(sentAt: number, now: number): void {
    if (sentAt <= this.recoveryStart) return;
    this.recoveryStart = now;
    this.ssthresh = Math.max(this.cwnd / 2, this.minimum);
    this.cwnd = this.ssthresh;
  }

  onTimeout(now: number): void {
    this.recoveryStart = now;
    this.ssthresh = Math.max(this.cwnd / 2, this.minimum);
    this.cwnd = this.minimum;
  }
}
