/**
 * Round-trip estimate and retransmission timeout, RFC 6298 with PROTOCOL.md §5's bounds:
 * RTO = SRTT + max(4 × RTTVAR, 6 ms), clamped to [min(10, deliveryTimeout), deliveryTimeout];
 * deliveryTimeout until the first sample.
 */
export class RttEstimator {
  /** Smoothed RTT in ms; undefined until the first sample. */
  srtt: number | undefined;
  rttvar = 0;
  latest: number | undefined;
  private readonly minRto: number;

  constructor(private readonly deliveryTimeout: number) {
    this.minRto = Math.min(10, deliveryTimeout);
  }

  sample(rtt: number): void {
    const r = Math.max(0, rtt);
    this.latest = r;
    if (this.srtt === undefined) {
      this.srtt = r;
      this.rttvar = r / 2;
    } else {
      this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
      this.srtt = 0.875 * this.srtt + 0.125 * r;
    }
  }

  get rto(): number {
    if (this.srtt === undefined) return this.deliveryTimeout;
    const rto = this.srtt + Math.max(4 * this.rttvar, 6);
    return Math.min(this.deliveryTimeout, Math.max(this.minRto, rto));
  }

  /** The timeout for a packet that has already timed out `backoffs` times (doubling, capped at 64 × deliveryTimeout). */
  backedOff(backoffs: number): number {
    return Math.min(this.rto * 2 ** backoffs, 64 * this.deliveryTimeout);
  }
}
