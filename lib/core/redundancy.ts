/**
 * Redundancy for small messages on lossy paths. Messages are delivered in order, so one lost
 * packet holds back every message behind it for a whole round trip. When the sender has nothing
 * else to send and has seen loss recently, it sends a small DATA packet twice at once (and the
 * resend of a lost one, whatever its size): a second copy costs a few bytes and turns a 5 % loss
 * into a 0.25 % one for latency-sensitive traffic.
 * Both copies leave at the same instant, so either one's ack is a valid RTT sample (no Karn issue).
 */
export class SmallPacketRedundancy {
  private lastLossAt = -Infinity;

  constructor(
    /** Largest DATA packet (wire bytes) that is duplicated. */
    private readonly maxPacketSize: number,
    /** How long one loss keeps redundancy on, ms: long enough not to flap while copies hide losses. */
    private readonly memory: number,
  ) {}

  /** The peer reported a gap (REPEAT): real loss, unlike a timeout, which may only be a slow ack. */
  onLoss(now: number): void {
    this.lastLossAt = now;
  }

  /** Whether a packet of `size` bytes, sent while nothing else is queued, gets a second copy. */
  duplicate(size: number, now: number): boolean {
    return size <= this.maxPacketSize && now - this.lastLossAt < this.memory;
  }

  /**
   * Whether the resend of a lost packet gets a second copy: the peer is waiting on it, and a lost
   * resend costs another round trip. Small ones always; any size when nothing else is queued (a
   * stream's resend is a few per cent of its packets, a bulk transfer's would be many).
   */
  duplicateResend(size: number, nothingQueued: boolean, now: number): boolean {
    return this.duplicate(nothingQueued ? 0 : size, now);
  }
}

export const REDUNDANT_PACKET_MAX_SIZE = 256;
export const REDUNDANCY_MEMORY_MS = 30_000;
