import { INITIAL_WINDOW_PACKETS, MINIMUM_WINDOW_PACKETS, type AckSample, type CongestionController } from './controller';

/**
 * NewReno in spirit (RFC 5681, RFC 9002 §7): slow start, congestion avoidance, one reduction per
 * round of losses (losses of packets sent before the recovery began do not reduce again), and a
 * collapse to the minimum window on persistent loss. Every loss halves the window, so random
 * loss caps it near the Mathis rate (MSS / RTT × 1.2 / √p): kept as the reference the
 * model-based default is compared with.
 */
export class NewReno implements CongestionController {
  readonly pacingRate = Infinity;
  private cwnd: number;
  private ssthresh = Infinity;
  private recoveryStart = -Infinity;

  constructor(
    /** The largest packet sent now: path-MTU probing may raise it. */
    public datagramSize: number,
    private readonly maxWindow: number,
  ) {
    this.cwnd = INITIAL_WINDOW_PACKETS * datagramSize;
  }

  private get minimum(): number {
    return MINIMUM_WINDOW_PACKETS * this.datagramSize;
  }

  get window(): number {
    return Math.min(this.maxWindow, Math.floor(this.cwnd));
  }

  onAcked(sample: AckSample): void {
    if (this.cwnd >= this.maxWindow) return;
    const bytes = sample.ackedBytes;
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
