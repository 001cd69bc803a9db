import { DATA_HEADER_SIZE } from '../../wire/packet';
import { ETHERNET_IPV4_DATAGRAM } from './ceiling';

/** Datagram sizes tried in turn below the ceiling (which is tried last): Ethernet's, jumbo frames', then powers of two. */
const STEPS = [ETHERNET_IPV4_DATAGRAM, 8972, 16384, 32768];
/** Unanswered PROBEs of one size after which the path is taken not to carry it (RFC 8899's MAX_PROBES). */
export const MAX_PROBES = 3;
/**
 * Timeouts in a row of DATA larger than the version-1 size, with no such packet acknowledged in
 * between, that say the path stopped carrying them (a black hole, RFC 8899 §4.3). Random loss
 * does not do that: acknowledgements of large packets reset the count.
 */
export const BLACK_HOLE_TIMEOUTS = 6;

/** What the sender asks of packet sizing: the payload for messages that start now, and what became of packets larger than the base. */
export interface PacketSizing {
  /** DATA payload bytes per packet for a message whose first packet leaves now. */
  readonly payloadSize: number;
  /** A DATA packet of `size` bytes was acknowledged. */
  acked?(size: number): void;
  /** A DATA packet of `size` bytes timed out. */
  timedOut?(size: number): void;
}

/**
 * Datagram packetization-layer path-MTU discovery (RFC 8899) as pure state: starts at the
 * version-1 size, which is known to work; tries each larger step with PROBEs, one at a time;
 * raises the size when a PROBE is acknowledged; stops at the first size that MAX_PROBES PROBEs in
 * a row do not get through. Sizes are packet bytes before any sealing (`overhead` below the wire).
 */
export class PathMtuSearch implements PacketSizing {
  /** The largest packet size confirmed: what DATA may use. */
  datagramSize: number;
  /** Sizes still to try, smallest first. */
  private readonly steps: number[];
  private attempts = 0;
  private largeTimeouts = 0;
  /** Set when a black hole brought the size back to the base: told to whoever drives the search. */
  onShrunk: (() => void) | undefined;

  constructor(
    /** The version-1 size, min(own, peer's maxDatagramSize), as a packet size. */
    readonly base: number,
    /** The largest packet size both sides allow: the smaller of what the peer accepts and this side's probe ceiling. */
    readonly ceiling: number,
    overhead = 0,
  ) {
    this.datagramSize = base;
    this.steps = STEPS.map((step) => step - overhead).filter((size) => size > base && size < ceiling);
    if (ceiling > base) this.steps.push(ceiling);
  }

  get payloadSize(): number {
    return this.datagramSize - DATA_HEADER_SIZE;
  }

  /** The size the next PROBE tries, or undefined when the search is over. */
  get probeSize(): number | undefined {
    return this.steps[0];
  }

  /** A PROBE of `size` was acknowledged: DATA may now use it. False for a stale or unknown size. */
  probeAcked(size: number): boolean {
    if (size !== this.steps[0]) return false;
    this.steps.shift();
    this.datagramSize = size;
    this.attempts = 0;
    return true;
  }

  /** The PROBE outstanding went unanswered for a probe timeout; after MAX_PROBES, the search ends. */
  probeLost(): void {
    if (this.steps.length === 0) return;
    if (++this.attempts >= MAX_PROBES) this.steps.length = 0;
  }

  /** Ends the search at the size confirmed so far (the socket refused the size being probed). */
  stop(): void {
    this.steps.length = 0;
  }

  acked(size: number): void {
    if (size > this.base) this.largeTimeouts = 0;
  }

  timedOut(size: number): void {
    if (size <= this.base || this.datagramSize === this.base) return;
    if (++this.largeTimeouts < BLACK_HOLE_TIMEOUTS) return;
    this.shrink();
  }

  /** The path no longer carries what was confirmed (a black hole, or the socket refused a size): back to the base, search over. */
  shrink(): void {
    this.datagramSize = this.base;
    this.steps.length = 0;
    this.largeTimeouts = 0;
    this.onShrunk?.();
  }
}
