import { ABANDON_SIZE, ChannelPacketType, MAX_TTL_MS, type AbandonPacket, type ChannelDataPacket } from '../wire/channels';
import { DATA_HEADER_SIZE, PacketType, type DataAckPacket, type DataPacket, type SeqRange } from '../wire/packet';
import { seqAdd, seqAfter, seqDiff } from '../wire/serial';
import { MAX_PACKETS_PER_MESSAGE, fragment, packetCount } from '../wire/fragment';
import { SendQueues, sendChannel, type SendChannel } from './channels/send-queues';
import { INITIAL_WINDOW_PACKETS, type CongestionController } from './congestion/controller';
import { DeliveryRate, type RateStamp } from './congestion/delivery-rate';
import { Pacer } from './congestion/pacer';
import { MessageExpiredError } from './channels/errors';
import type { RttEstimator } from './rtt';
import type { PacketSizing } from './path-mtu/search';
import type { SmallPacketRedundancy } from './redundancy';
import type { ConnectionCounters } from './stats';

/** A queued message: its packets, and who waits for its acknowledgement. */
export interface OutgoingMessage {
  readonly size: number;
  readonly data: Uint8Array;
  /** Cut when queued; cut again when its first packet leaves if the packet size changed meanwhile. */
  payloads: Uint8Array[];
  /** The size `payloads` were cut for (fragment()'s argument). */
  cutFor: number;
  readonly channel: SendChannel;
  /** Assigned when its first packet leaves, so a message withdrawn before that leaves no hole in the batch numbers. */
  batch: number;
  /** A packet of it has left: it can no longer be withdrawn. */
  started: boolean;
  /** Packets of it sent so far. */
  sent: number;
  /** Packets of this message not yet acknowledged (counted once packetized). */
  unacked: number;
  /** When the sender gives up on it (queued + ttl); Infinity for a message without a ttl. */
  readonly deadline: number;
  readonly ttl: number;
  /** Given up on after it started: what is left of it goes out as ABANDON. */
  abandoned: boolean;
  /** Acknowledged, abandoned or withdrawn: nothing is owed to its waiter any more. */
  settled: boolean;
  readonly onAcked: (() => void) | undefined;
  readonly onFailed: ((error: Error) => void) | undefined;
}

/** What the sender hands to the wire: DATA (channel 0), CHANNEL_DATA, or ABANDON in place of a packet given up on. */
export type SentPacket = DataPacket | ChannelDataPacket | AbandonPacket;

/**
 * A packet sent and not yet acknowledged; it is itself the packet handed to the encoder (one
 * object shape for all three types, no copy per send). Abandoning turns it into an ABANDON.
 */
interface InFlight extends RateStamp {
  type: typeof PacketType.Data | typeof ChannelPacketType.ChannelData | typeof ChannelPacketType.Abandon;
  readonly connectionId: number;
  readonly seq: number;
  readonly batch: number;
  readonly index: number;
  readonly count: number;
  payload: Uint8Array;
  readonly channel: number;
  readonly flags: number;
  /** CHANNEL_DATA's ttl field: refreshed at each send. */
  ttl: number;
  readonly message: OutgoingMessage;
  /** Where its timeout counts from: the last send, or the last timeout it could not be resent at. */
  timerFrom: number;
  transmissions: number;
  timeouts: number;
}

/** Where a sender's packets go: set by the retransmit pipeline while it runs. */
export interface SenderSink {
  transmit(packet: SentPacket): void;
  /** A packet sent again, and why (for `events$`). */
  resent(packet: SentPacket, cause: 'timeout' | 'repeat'): void;
}

const EMPTY = new Uint8Array(0);

/** The ttl field for a packet of `message` sent at `now`: what is left of its ttl, at least 1 ms; 0 without one. */
function ttlLeft(message: OutgoingMessage, now: number): number {
  if (message.deadline === Infinity) return 0;
  return Math.min(MAX_TTL_MS, Math.max(1, Math.ceil(message.deadline - now)));
}

/** How long one reordering keeps the loss detection tolerant of it. */
const REORDERING_MEMORY_MS = 10_000;

/** How many ms of sending the pacer lets leave at once: timers fire about once a millisecond. */
const PACING_BURST_MS = 2;

const NO_SINK: SenderSink = { transmit: () => undefined, resent: () => undefined };

/**
 * The sending half of a connection: messages become batches of DATA packets, sent through a
 * sliding window (min of congestion window and the peer's advertised window), released on
 * DATA_ACK, resent on REPEAT at once and on timeout with back-off (PROTOCOL.md §4–§6).
 * Pure state: the retransmit pipeline feeds it packets and times, and arms one deadline at `nextDeadline`.
 */
export class Sender {
  sink: SenderSink = NO_SINK;
  private nextSeq: number;
  /** Channel 0: the connection's own messages (plain DATA). */
  readonly defaultChannel: SendChannel;
  private readonly queues = new SendQueues();
  /** Messages with a ttl not yet settled, and the earliest of their deadlines. */
  private expiring: OutgoingMessage[] | undefined;
  nextExpiry = Infinity;
  /** entries[head + i] holds seq `oldest + i`; undefined once acknowledged. */
  private entries: (InFlight | undefined)[] = [];
  private head = 0;
  private oldest: number;
  private unackedCount = 0;
  /** Wire bytes of unacknowledged DATA packets: what the congestion window limits. */
  private bytesInFlight = 0;
  private peerCumulative: number;
  private peerWindow: number;
  private probeSent = false;
  private readonly deliveryRate = new DeliveryRate();
  private readonly pacer: Pacer;
  /** When the pacer lets the next new packet leave (Infinity: nothing is waiting for it). */
  nextPaceAt = Infinity;
  /** What the ack being applied released (reused: no allocation per ack). */
  private readonly ackTally: { bytes: number; sample: InFlight | undefined; deliveredSentAt: number } = {
    bytes: 0,
    sample: undefined,
    deliveredSentAt: -Infinity,
  };
  /** The latest send time of a packet sent once that any ack has confirmed (RACK.xmit_ts). */
  private newestDeliveredSentAt = -Infinity;
  /** When the path last reordered: a packet sent once was confirmed after a later one, or a resend was confirmed too soon to be its own. */
  private reorderedAt = -Infinity;
  /** When an ack last acknowledged something new: the timeout counts from here too (RFC 6298 §5.3). */
  private lastProgressAt = -Infinity;
  /** Completion callbacks of messages acknowledged during the current ack, run once its state is consistent. */
  private readonly acknowledgedMessages: (() => void)[] = [];
  bufferedBytes = 0;

  constructor(
    private readonly connectionId: number,
    /** DATA payload size now, and where the sizes of acknowledged and timed-out packets are reported (path-MTU probing). */
    private readonly sizing: PacketSizing,
    peerReceiveWindow: number,
    private readonly rtt: RttEstimator,
    private readonly congestion: CongestionController,
    private readonly stats: ConnectionCounters,
    private readonly redundancy: SmallPacketRedundancy | undefined,
    initialSeq = 0,
    initialBatch = 0,
  ) {
    this.nextSeq = initialSeq;
    this.oldest = initialSeq;
    this.peerCumulative = initialSeq;
    this.defaultChannel = sendChannel(0, { initialBatch });
    this.peerWindow = peerReceiveWindow;
    this.pacer = new Pacer(INITIAL_WINDOW_PACKETS * (sizing.payloadSize + DATA_HEADER_SIZE), PACING_BURST_MS);
  }

  /** Nothing queued and nothing unacknowledged. */
  get idle(): boolean {
    return this.unackedCount === 0 && this.queues.empty;
  }

  get inFlight(): number {
    return this.unackedCount;
  }

  get inFlightBytes(): number {
    return this.bytesInFlight;
  }

  get window(): { congestion: number; peer: number } {
    return { congestion: this.congestion.window, peer: this.peerWindow };
  }

  /**
   * Queues a message on `channel` (default: channel 0); `onAcked` runs once every packet of it is
   * acknowledged, `onFailed` if the connection ends first or, with a `ttl` (ms, on a channel other
   * than 0), with MessageExpiredError when it is not acknowledged `ttl` ms after `now`.
   * Throws RangeError when it needs more than 65535 packets.
   */
  enqueue(
    message: Uint8Array,
    onAcked?: () => void,
    onFailed?: (error: Error) => void,
    channel: SendChannel = this.defaultChannel,
    ttl = 0,
    now = 0,
  ): OutgoingMessage {
    const cutFor = this.cutSize(channel);
    const payloads = fragment(message, cutFor);
    const deadline = ttl > 0 ? now + ttl : Infinity;
    const queued: OutgoingMessage = {
      size: message.length,
      data: message,
      payloads,
      cutFor,
      channel,
      batch: 0,
      started: false,
      sent: 0,
      unacked: payloads.length,
      deadline,
      ttl,
      abandoned: false,
      settled: false,
      onAcked,
      onFailed,
    };
    this.queues.push(queued);
    this.bufferedBytes += message.length;
    channel.bufferedBytes += message.length;
    if (deadline !== Infinity) {
      (this.expiring ??= []).push(queued);
      if (deadline < this.nextExpiry) this.nextExpiry = deadline;
    }
    return queued;
  }

  /** Withdraws a queued message none of whose packets has left; false (nothing changes) once one has. */
  withdraw(message: OutgoingMessage): boolean {
    // The usual case (a send() unsubscribed after its acknowledgement) costs no search.
    if (message.started || message.settled) return false;
    if (!this.queues.remove(message)) return false;
    this.settleUnacknowledged(message);
    return true;
  }

  /**
   * Gives up on a message that is not acknowledged yet: before it started, it is taken out (no
   * batch number is used); afterwards, its packets in flight become ABANDON (sent again at once)
   * and, if some were never sent, one ABANDON goes out for the next of them, so the peer skips the
   * batch. Its waiter is not told (the caller decides). False when it was already settled.
   */
  abandon(message: OutgoingMessage, now: number): boolean {
    if (message.settled) return false;
    if (!message.started) {
      this.queues.remove(message);
      this.settleUnacknowledged(message);
      return true;
    }
    this.settleUnacknowledged(message);
    message.abandoned = true; // still queued if not all its packets left: pump() sends its ABANDON
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i];
      if (e === undefined || e.message !== message) continue;
      this.bytesInFlight -= e.size - ABANDON_SIZE;
      e.size = ABANDON_SIZE;
      e.type = ChannelPacketType.Abandon;
      e.payload = EMPTY;
      if (!this.mayResend(e.seq)) continue;
      this.resend(e, now, e.timeouts);
    }
    return true;
  }

  /** Abandons every message whose ttl ran out by `now`, and fails its waiter with MessageExpiredError. */
  expire(now: number): void {
    const expiring = this.expiring;
    if (expiring === undefined || now < this.nextExpiry) return;
    let kept = 0;
    let next = Infinity;
    const expired: OutgoingMessage[] = [];
    for (const message of expiring) {
      if (message.settled) continue;
      if (message.deadline <= now) {
        if (this.abandon(message, now)) expired.push(message);
        continue;
      }
      if (message.deadline < next) next = message.deadline;
      expiring[kept++] = message;
    }
    expiring.length = kept;
    this.nextExpiry = next;
    this.stats.messagesExpired += expired.length;
    for (const message of expired) message.onFailed?.(new MessageExpiredError(message.channel.id, message.ttl, message.size));
  }

  private settleUnacknowledged(message: OutgoingMessage): void {
    message.settled = true;
    this.bufferedBytes -= message.size;
    message.channel.bufferedBytes -= message.size;
  }

  /** fragment()'s argument for `channel` now: it sizes DATA payloads, and a CHANNEL_DATA header is longer by the difference. */
  private cutSize(channel: SendChannel): number {
    return this.sizing.payloadSize + 2 * DATA_HEADER_SIZE - channel.headerSize;
  }

  /** A message about to start takes the packet size of now (probing may have raised it since it was queued). */
  private recut(message: OutgoingMessage): void {
    const cutFor = this.cutSize(message.channel);
    if (cutFor === message.cutFor || packetCount(message.size, cutFor) > MAX_PACKETS_PER_MESSAGE) return;
    message.payloads = fragment(message.data, cutFor);
    message.unacked = message.payloads.length;
    message.cutFor = cutFor;
  }

  /** Sends new packets while both windows allow, and at most `byteBudget` bytes of them (address validation). */
  pump(now: number, byteBudget = Infinity): void {
    const queues = this.queues;
    this.nextPaceAt = Infinity;
    const rate = this.congestion.pacingRate;
    for (;;) {
      const message = queues.current();
      if (message === undefined) {
        if (this.bytesInFlight < this.congestion.window) this.deliveryRate.markAppLimited(this.bytesInFlight);
        return;
      }
      const channel = message.channel;
      if (!message.started && !message.abandoned) this.recut(message);
      const offset = seqDiff(this.nextSeq, this.peerCumulative);
      const zeroWindowProbe = this.peerWindow === 0 && offset === 0 && !this.probeSent;
      const index = message.sent;
      const abandoned = message.abandoned;
      const size = abandoned ? ABANDON_SIZE : channel.headerSize + message.payloads[index]!.length;
      const congested = this.bytesInFlight > 0 && this.bytesInFlight + size > this.congestion.window;
      if (!zeroWindowProbe && (offset >= this.peerWindow || congested)) return;
      if (size > byteBudget) return;
      if (!zeroWindowProbe && !this.pacer.maySend(size, rate, now)) {
        this.nextPaceAt = this.pacer.readyAt(size, rate, now);
        return;
      }
      byteBudget -= size;
      if (zeroWindowProbe) this.probeSent = true;
      if (index === 0) {
        message.started = true;
        message.batch = channel.nextBatch;
        channel.nextBatch = seqAdd(channel.nextBatch, 1);
      }
      const entry: InFlight = {
        type: abandoned ? ChannelPacketType.Abandon : channel.packetType,
        connectionId: this.connectionId,
        seq: this.nextSeq,
        batch: message.batch,
        index,
        count: message.payloads.length,
        payload: abandoned ? EMPTY : message.payloads[index]!,
        channel: channel.id,
        flags: channel.flags,
        ttl: ttlLeft(message, now),
        size,
        message,
        lastSentAt: now,
        timerFrom: now,
        transmissions: 1,
        timeouts: 0,
        deliveredBefore: 0,
        deliveredBeforeAt: 0,
        intervalStart: 0,
        inStepBefore: 0,
        appLimited: false,
      };
      this.deliveryRate.onSend(entry, this.bytesInFlight, now);
      this.pacer.spend(size, rate, now);
      // One ABANDON stands for all the packets of an abandoned message that never left.
      const finished = abandoned || ++message.sent === message.payloads.length;
      queues.sent(finished);
      this.entries.push(entry);
      this.unackedCount++;
      this.bytesInFlight += size;
      this.nextSeq = seqAdd(this.nextSeq, 1);
      this.stats.dataPacketsSent++;
      this.sink.transmit(entry as SentPacket);
      if (queues.empty && this.redundancy?.duplicate(size, now)) {
        this.stats.redundantSends++;
        this.sink.transmit(entry as SentPacket);
      }
    }
  }

  /**
   * Earliest retransmission deadline among unacknowledged packets (Infinity when none). A packet
   * times out one (backed-off) RTO after the later of its last send and the last ack that made
   * progress, with the CURRENT RTO: while acks keep coming, a queue that makes the RTT grow, or
   * the peer pausing a few ms, must not time out a whole window of packets that are on their way.
   * Holes under a flowing ack stream are the receiver's to report (REPEAT), not the timer's.
   */
  nextDeadline(): number {
    let earliest = Infinity;
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i];
      if (e !== undefined) earliest = Math.min(earliest, this.deadlineOf(e));
    }
    return earliest;
  }

  private deadlineOf(e: InFlight): number {
    return Math.max(e.timerFrom, this.lastProgressAt) + this.rtt.backedOff(e.timeouts);
  }

  /** Returns false when the ack names packets never sent (a protocol violation). */
  onAck(ack: DataAckPacket, now: number): boolean {
    if (seqAfter(ack.cumulative, this.nextSeq)) return false;
    // The window comes from the DATA_ACK with the highest cumulative (the later one on ties).
    if (!seqAfter(this.peerCumulative, ack.cumulative)) {
      if (ack.cumulative !== this.peerCumulative || ack.window !== this.peerWindow) this.probeSent = false;
      this.peerCumulative = ack.cumulative;
      this.peerWindow = ack.window;
    }
    const tally = this.ackTally;
    tally.bytes = 0;
    tally.sample = undefined;
    tally.deliveredSentAt = -Infinity;
    this.deliveryRate.begin();
    // An older, reordered ack has a cumulative below ours: it releases nothing below it.
    const ahead = seqDiff(ack.cumulative, this.oldest);
    if (ahead < 2 ** 31) for (let i = 0, below = Math.min(ahead, this.span); i < below; i++) this.release(i, now);
    for (const range of ack.ranges) this.releaseRange(range, now);
    this.advanceOldest();
    if (tally.bytes === 0) return true;
    this.lastProgressAt = now;
    const sample = tally.sample as InFlight | undefined; // set by release(), which TS does not see
    const rtt = sample === undefined ? undefined : now - sample.lastSentAt;
    if (rtt !== undefined) this.rtt.sample(rtt);
    tally.sample = undefined;
    this.congestion.onAcked(this.deliveryRate.finish(this.bytesInFlight, rtt), now);
    this.resendOvertaken(tally.deliveredSentAt, now);
    if (tally.deliveredSentAt > this.newestDeliveredSentAt) this.newestDeliveredSentAt = tally.deliveredSentAt;
    if (this.acknowledgedMessages.length > 0) {
      const callbacks = this.acknowledgedMessages.splice(0);
      for (const callback of callbacks) callback();
    }
    return true;
  }

  /**
   * Time-based loss detection in the spirit of RACK (RFC 8985): a packet still unacknowledged that
   * was sent before a packet this ack just confirmed (by more than the reorder window) was
   * overtaken, so it is lost. Resending now saves the receiver's REPEAT delay, catches a lost resend a round trip
   * before the receiver would ask again, and recovers a burst after a timeout's single resend.
   * The walk stops at the first packet sent once and recently: packets after it left even later.
   */
  private resendOvertaken(deliveredSentAt: number, now: number): void {
    const threshold = deliveredSentAt - this.reorderWindow(now);
    let lossAt = -Infinity;
    let lostBytes = 0;
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i];
      if (e === undefined) continue;
      if (e.lastSentAt >= threshold) {
        if (e.transmissions === 1) break;
        continue;
      }
      if (!this.mayResend(e.seq)) continue;
      if (e.lastSentAt > lossAt) lossAt = e.lastSentAt;
      lostBytes += e.size;
      this.resendLost(e, now);
    }
    if (lossAt === -Infinity) return;
    this.redundancy?.onLoss(now);
    this.congestion.onLoss(lossAt, now, lostBytes);
  }

  /**
   * How much earlier than a confirmed packet another must have left to be called lost. On a path
   * that has not reordered lately none, which saves a quarter RTT on every loss (RFC 8985 §6.2
   * waits for three later packets instead, which costs a stream more); after reordering, a
   * quarter RTT.
   */
  private reorderWindow(now: number): number {
    return now - this.reorderedAt < REORDERING_MEMORY_MS ? (this.rtt.srtt ?? 0) / 4 : 0;
  }

  /** Resends a packet known lost (REPEAT, or overtaken): at once, no back-off, twice if redundancy is on. */
  private resendLost(e: InFlight, now: number): void {
    this.resend(e, now, e.timeouts);
    this.sink.resent(e as SentPacket, 'repeat');
    if (this.redundancy?.duplicateResend(e.size, this.queues.empty, now)) {
      this.stats.redundantSends++;
      this.sink.transmit(e as SentPacket);
    }
  }

  /** REPEAT: resend the named packets still unacknowledged, now; a loss signal, not a timeout. */
  onRepeat(ranges: readonly SeqRange[], now: number): void {
    this.redundancy?.onLoss(now);
    let lossAt = -Infinity;
    let lostBytes = 0;
    for (const range of ranges) {
      this.forEachInRange(range, (e) => {
        // Resent within half a round trip (overtaken, or a REPEAT just before): this request crossed it.
        if (!this.mayResend(e.seq) || now - e.lastSentAt < (this.rtt.srtt ?? 0) / 2) return;
        if (e.lastSentAt > lossAt) lossAt = e.lastSentAt;
        lostBytes += e.size;
        this.stats.repeatsAnswered++;
        this.resendLost(e, now);
      });
    }
    if (lossAt !== -Infinity) this.congestion.onLoss(lossAt, now, lostBytes);
  }

  /**
   * The deadline fired. As RFC 6298 §5.4 says, only the earliest packet whose timeout passed is
   * resent (with its own doubled timeout); the others start a fresh timeout from now. The newest
   * unacknowledged packet goes too, as a tail probe (RFC 8985 §7): if a whole burst was lost, its
   * arrival shows the receiver the gap, and REPEAT brings back the rest at once. Resending every
   * due packet instead would spray a whole window into the network whenever the peer merely paused.
   */
  onTimeout(now: number): void {
    let earliest: InFlight | undefined;
    let newest: InFlight | undefined;
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i];
      if (e === undefined) continue;
      newest = e;
      if (this.deadlineOf(e) > now) continue;
      if (earliest === undefined) earliest = e;
      else e.timerFrom = now;
    }
    if (earliest === undefined) return;
    this.probeSent = false;
    const lossAt = earliest.lastSentAt;
    const persistent = earliest.timeouts > 0;
    this.sizing.timedOut?.(earliest.size);
    if (this.mayResend(earliest.seq)) {
      this.resend(earliest, now, earliest.timeouts + 1);
      this.sink.resent(earliest as SentPacket, 'timeout');
      if (newest !== earliest && newest !== undefined && this.mayResend(newest.seq)) {
        this.resend(newest, now, newest.timeouts);
        this.sink.resent(newest as SentPacket, 'timeout');
      }
    } else earliest.timerFrom = now; // outside the peer's window: wait another timeout
    // A first timeout is often spurious (the RTO sits close to the RTT by PROTOCOL.md §5's formula):
    // treat it as one loss. Only a packet timing out again collapses the window (RFC 9002 §7.6 in spirit).
    if (persistent) this.congestion.onTimeout(now);
    else this.congestion.onLoss(lossAt, now, earliest.size);
  }

  /** Drops everything queued and in flight (the connection closed); tells each waiting message why. */
  clear(error: Error): void {
    const unfinished = new Set<OutgoingMessage>();
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i];
      if (e !== undefined && !e.message.settled) unfinished.add(e.message);
    }
    for (const message of this.queues.drain()) if (!message.settled) unfinished.add(message);
    this.entries = [];
    this.head = 0;
    this.expiring = undefined;
    this.nextExpiry = Infinity;
    this.unackedCount = 0;
    this.bytesInFlight = 0;
    this.bufferedBytes = 0;
    for (const message of unfinished) {
      message.settled = true;
      message.channel.bufferedBytes = 0;
      message.onFailed?.(error);
    }
  }


  private get span(): number {
    return this.entries.length - this.head;
  }

  private mayResend(seq: number): boolean {
    const offset = seqDiff(seq, this.peerCumulative);
    return offset < this.peerWindow || offset === 0;
  }

  private resend(e: InFlight, now: number, timeouts: number): void {
    e.transmissions++;
    e.timeouts = timeouts;
    this.deliveryRate.onSend(e, this.bytesInFlight, now);
    this.pacer.spend(e.size, this.congestion.pacingRate, now);
    e.lastSentAt = now;
    e.timerFrom = now;
    if (e.type === ChannelPacketType.ChannelData) e.ttl = ttlLeft(e.message, now);
    this.stats.retransmissions++;
    this.sink.transmit(e as SentPacket);
  }

  private release(offset: number, now: number): void {
    const at = this.head + offset;
    const e = this.entries[at];
    if (e === undefined) return;
    this.entries[at] = undefined;
    const tally = this.ackTally;
    tally.bytes += e.size;
    this.sizing.acked?.(e.size);
    this.deliveryRate.onDelivered(e, now);
    if (e.transmissions === 1) {
      // Only packets sent once say WHEN what was delivered left (Karn again): an ack for a resent
      // packet may confirm its original, and a paused peer's late acks would then make a whole
      // window look overtaken.
      if (e.lastSentAt > tally.deliveredSentAt) tally.deliveredSentAt = e.lastSentAt;
      if (e.lastSentAt < this.newestDeliveredSentAt) this.reorderedAt = now;
      if (tally.sample === undefined || seqAfter(e.seq, tally.sample.seq)) tally.sample = e;
    } else if (now - e.lastSentAt < (this.rtt.srtt ?? 0) / 2) {
      // Confirmed sooner after its resend than a round trip allows: the original arrived after
      // all, late. The path reorders, and the resend was spurious.
      this.reorderedAt = now;
    }
    this.unackedCount--;
    this.bytesInFlight -= e.size;
    const message = e.message;
    if (--message.unacked === 0 && !message.settled) {
      this.settleUnacknowledged(message);
      if (message.onAcked !== undefined) this.acknowledgedMessages.push(message.onAcked);
    }
  }

  private releaseRange(range: SeqRange, now: number): void {
    const span = this.span;
    let from = seqDiff(range.start, this.oldest);
    let to = seqDiff(range.end, this.oldest);
    if (from >= 2 ** 31) from = 0; // the range starts below our oldest unacknowledged packet
    if (to >= 2 ** 31) return;
    to = Math.min(to, span - 1);
    for (let i = from; i <= to; i++) this.release(i, now);
  }

  private forEachInRange(range: SeqRange, visit: (e: InFlight) => void): void {
    let from = seqDiff(range.start, this.oldest);
    let to = seqDiff(range.end, this.oldest);
    if (from >= 2 ** 31) from = 0;
    if (to >= 2 ** 31) return;
    to = Math.min(to, this.span - 1);
    for (let i = from; i <= to; i++) {
      const e = this.entries[this.head + i];
      if (e !== undefined) visit(e);
    }
  }

  private advanceOldest(): void {
    const start = this.head;
    while (this.head < this.entries.length && this.entries[this.head] === undefined) this.head++;
    this.oldest = seqAdd(this.oldest, this.head - start);
    if (this.head === this.entries.length) {
      this.entries.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries.splice(0, this.head);
      this.head = 0;
    }
  }
}
