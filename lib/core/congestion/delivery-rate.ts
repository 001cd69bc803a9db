import type { AckSample } from './controller';

/** What a packet remembers of the connection's delivery state when it (last) left. */
export interface RateStamp {
  /** Bytes acknowledged in all, when it left. */
  deliveredBefore: number;
  /** When the acknowledgement that brought `deliveredBefore` arrived. */
  deliveredBeforeAt: number;
  /** When the packet that opened its sending interval left. */
  intervalStart: number;
  /** Bytes delivered in step (see DeliveryRate), when it left. */
  inStepBefore: number;
  /** It left while the application had nothing more to send. */
  appLimited: boolean;
  lastSentAt: number;
  /** How many times it left: an ack for a resent packet may be for its original. */
  transmissions: number;
  size: number;
}

const REORDER_FRACTION = 1 / 8;

/**
 * Delivery-rate estimation as in draft-cheng-iccrg-delivery-rate-estimation: each packet is
 * stamped with the delivered byte count when it leaves; when it is acknowledged, the bytes
 * delivered since, over the longer of its send interval and its ack interval, is a rate sample
 * that neither ack compression nor a burst of sends can inflate. Only bytes acknowledged in step
 * count towards it: a packet sent before one an earlier ack already released was delivered long
 * ago and reported late (a DATA_ACK names only 32 ranges, so after a burst of losses the packets
 * beyond them are released together once the holes fill); counting them in the interval they
 * were reported in would read a rate the path never had. A packet overtaken by less than an
 * eighth of the minimum RTT is reordering, not a late report, and counts: path jitter of a few
 * ms overtakes most packets of a fast flow, and leaving them out read a 40 ms path with 0-5 ms
 * of jitter at 0.56 of its rate. Samples taken while the
 * application limited the sending say so, so a controller does not read a quiet application as a
 * slow path.
 */
export class DeliveryRate {
  private delivered = 0;
  private inStep = 0;
  /** When the newest packet acknowledged by earlier acks left: packets sent before it are reported late. */
  private newestSentAcked = -Infinity;
  private newestSentInAck = -Infinity;
  /** An eighth of the lowest RTT the acks have shown, ms: how far a packet may be overtaken and still count. */
  private reorderTolerance = 0;
  private minRtt = Infinity;
  private deliveredAt = 0;
  private intervalStart = 0;
  /** Non-zero while app-limited: the delivered count past which samples are network-limited again. */
  private appLimitedUntil = 0;
  /** The newest packet acknowledged by the ack being applied. */
  private newest: RateStamp | undefined;
  readonly sample: AckSample = { ackedBytes: 0, inFlight: 0, rtt: undefined, deliveryRate: undefined, interval: 0, appLimited: false, delivered: 0, priorDelivered: 0 };

  /** Stamps a packet leaving now with `inFlight` bytes unacknowledged before it. */
  onSend(packet: RateStamp, inFlight: number, now: number): void {
    if (inFlight === 0) {
      // Nothing in flight: the interval starts now, not at the last ack long ago.
      this.intervalStart = now;
      this.deliveredAt = now;
    }
    packet.deliveredBefore = this.delivered;
    packet.deliveredBeforeAt = this.deliveredAt;
    packet.inStepBefore = this.inStep;
    packet.intervalStart = this.intervalStart;
    packet.appLimited = this.appLimitedUntil !== 0;
  }

  /** The application has nothing to send and the windows are not full: samples until these bytes are delivered are app-limited. */
  markAppLimited(inFlight: number): void {
    this.appLimitedUntil = Math.max(this.delivered + inFlight, 1);
  }

  /** Starts reading one acknowledgement. */
  begin(): void {
    this.newest = undefined;
    this.newestSentInAck = -Infinity;
    this.sample.ackedBytes = 0;
  }

  /** A packet this acknowledgement released. */
  onDelivered(packet: RateStamp, now: number): void {
    this.delivered += packet.size;
    this.deliveredAt = now;
    this.sample.ackedBytes += packet.size;
    if (packet.lastSentAt >= this.newestSentAcked - this.reorderTolerance) this.inStep += packet.size;
    // Only packets sent once say when what was delivered left (Karn): the ack for a resend that
    // went 3 ms ago may be for its original, and would make every packet of the last RTT look late.
    if (packet.transmissions === 1 && packet.lastSentAt > this.newestSentInAck) this.newestSentInAck = packet.lastSentAt;
    const newest = this.newest;
    if (newest === undefined || packet.deliveredBefore > newest.deliveredBefore || (packet.deliveredBefore === newest.deliveredBefore && packet.lastSentAt > newest.lastSentAt)) {
      this.newest = packet;
    }
  }

  /** Finishes the acknowledgement: the sample for the controller (no rate when the interval is empty). */
  finish(inFlight: number, rtt: number | undefined): AckSample {
    const sample = this.sample;
    sample.inFlight = inFlight;
    sample.rtt = rtt;
    if (rtt !== undefined && rtt < this.minRtt) {
      this.minRtt = rtt;
      this.reorderTolerance = rtt * REORDER_FRACTION;
    }
    sample.delivered = this.delivered;
    sample.deliveryRate = undefined;
    sample.interval = 0;
    if (this.appLimitedUntil !== 0 && this.delivered > this.appLimitedUntil) this.appLimitedUntil = 0;
    if (this.newestSentInAck > this.newestSentAcked) this.newestSentAcked = this.newestSentInAck;
    const newest = this.newest;
    if (newest === undefined) return sample;
    this.newest = undefined;
    sample.priorDelivered = newest.deliveredBefore;
    sample.appLimited = newest.appLimited;
    const sendInterval = newest.lastSentAt - newest.intervalStart;
    const ackInterval = this.deliveredAt - newest.deliveredBeforeAt;
    this.intervalStart = newest.lastSentAt;
    const interval = Math.max(sendInterval, ackInterval);
    if (interval <= 0) return sample;
    sample.interval = interval;
    sample.deliveryRate = (this.inStep - newest.inStepBefore) / interval;
    return sample;
  }
}
