/**
 * Congestion control behind a small interface, so controllers can be swapped and compared.
 * Windows count bytes on the wire, as in RFC 9002 §7: small messages (one packet each, since a
 * batch is one message) must not be throttled as if every packet were full-sized.
 */
export interface CongestionController {
  /** Bytes that may be in flight now. */
  readonly window: number;
  /** Bytes of the largest packet sent now (path-MTU probing raises it): what the windows' packet-sized terms use. */
  datagramSize: number;
  /** Bytes per ms at which new packets may leave; Infinity: as fast as the window allows. */
  readonly pacingRate: number;
  /** An acknowledgement released something; `now` is the scheduler's clock. */
  onAcked(sample: AckSample, now: number): void;
  /** Packets of `bytes` on the wire, the latest sent at `sentAt`, are known lost (REPEAT named them, they were overtaken, or a timeout fired once). */
  onLoss(sentAt: number, now: number, bytes: number): void;
  /** Persistent loss: a packet timed out again. */
  onTimeout(now: number): void;
}

/** What one acknowledgement tells a controller (one object, refilled per ack: read it, do not keep it). */
export interface AckSample {
  /** Wire bytes newly acknowledged. */
  ackedBytes: number;
  /** Wire bytes still unacknowledged after this ack. */
  inFlight: number;
  /** Round-trip time of the newest packet sent once among those acknowledged, ms; undefined when every one was resent (Karn). */
  rtt: number | undefined;
  /** Bytes per ms delivered over the interval the newest acknowledged packet spanned; undefined when no valid sample. */
  deliveryRate: number | undefined;
  /** The interval that rate was measured over, ms (a controller ignores ones shorter than the path's RTT: that is ack compression, not a rate). */
  interval: number;
  /** The rate was measured while the application, not the network, limited the sending. */
  appLimited: boolean;
  /** Bytes the connection has had acknowledged in all, and what that was when the newest acknowledged packet left: a round trip ends when that passes the mark set at the round's start. */
  delivered: number;
  priorDelivered: number;
}

export const INITIAL_WINDOW_PACKETS = 10;
export const MINIMUM_WINDOW_PACKETS = 2;
