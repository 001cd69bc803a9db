import { DATA_HEADER_SIZE, PacketType, type DataAckPacket, type DataPacket, type SeqRange } from '../wire/packet';
import { seqAdd, seqAfter, seqDiff } from '../wire/serial';
import { fragment } from '../wire/fragment';
import type { CongestionController } from './congestion';
import type { RttEstimator } from './rtt';
import type { SmallPacketRedundancy } from './redundancy';
import type { ConnectionCounters } from './stats';

/** A queued message: its packets, and who waits for its acknowledgement. */
export interface OutgoingMessage {
  readonly size: number;
  readonly payloads: Uint8Array[];
  /** Assigned when its first packet leaves, so a message withdrawn before that leaves no hole in the batch numbers. */
  batch: number;
  /** A packet of it has left: it can no longer be withdrawn. */
  started: boolean;
  /** Packets of this message not yet acknowledged (counted once packetized). */
  unacked: number;
  readonly onAcked: (() => void) | undefined;
  readonly onFailed: ((error: Error) => void) | undefined;
}

/** A DATA packet sent and not yet acknowledged; it is itself the packet handed to the encoder. */
interface InFlight extends DataPacket {
  readonly message: OutgoingMessage;
  lastSentAt: number;
  /** Where its timeout counts from: the last send, or the last timeout it could not be resent at. */
  timerFrom: number;
  transmissions: number;
  timeouts: number;
}

/** Where a sender's packets go: set by the retransmit pipeline while it runs. */
export interface SenderSink {
  transmit(packet: DataPacket): void;
  /** A packet sent again, and why (for `events$`). */
  resent(packet: DataPacket, cause: 'timeout' | 'repeat'): void;
}

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
  private nextBatch: number;
  private readonly queue: OutgoingMessage[] = [];
  private queueHead = 0;
  private fragmentIndex = 0;
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
  /** What the ack being applied released (reused: no allocation per ack). */
  private readonly ackTally: { bytes: number; sample: InFlight | undefined; deliveredSentAt: number } = {
    bytes: 0,
    sample: undefined,
    deliveredSentAt: -Infinity,
  };
  /** When an ack last acknowledged something new: the timeout counts from here too (RFC 6298 §5.3). */
  private lastProgressAt = -Infinity;
  /** Completion callbacks of messages acknowledged during the current ack, run once its state is consistent. */
  private readonly acknowledgedMessages: (() => void)[] = [];
  bufferedBytes = 0;

  constructor(
    private readonly connectionId: number,
    private readonly payloadSize: number,
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
    this.nextBatch = initialBatch;
    this.peerWindow = peerReceiveWindow;
  }

  /** Nothing queued and nothing unacknowledged. */
  get idle(): boolean {
    return this.unackedCount === 0 && this.queueHead === this.queue.length;
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
   * Queues a message; `onAcked` runs once every packet of it is acknowledged, `onFailed` if the
   * connection ends first. Throws RangeError when it needs more than 65535 packets.
   */
  enqueue(message: Uint8Array, onAcked?: () => void, onFailed?: (error: Error) => void): OutgoingMessage {
    const payloads = fragment(message, this.payloadSize + 18);
    const queued: OutgoingMessage = { size: message.length, payloads, batch: 0, started: false, unacked: payloads.length, onAcked, onFailed };
    this.queue.push(queued);
    this.bufferedBytes += message.length;
    return queued;
  }

  /** Withdraws a queued message none of whose packets has left; false (nothing changes) once one has. */
  withdraw(message: OutgoingMessage): boolean {
    // The usual case (a send() unsubscribed after its acknowledgement) costs no search.
    if (message.started) return false;
    const at = this.queue.indexOf(message, this.queueHead);
    if (at === -1) return false;
    this.queue.splice(at, 1);
    this.bufferedBytes -= message.size;
    return true;
  }



  /** Sends new packets while both windows allow, and at most `byteBudget` bytes of them (address validation). */
  pump(now: number, byteBudget = Infinity): void {
    while (this.queueHead < this.queue.length) {
      const message = this.queue[this.queueHead]!;
      const offset = seqDiff(this.nextSeq, this.peerCumulative);
      const zeroWindowProbe = this.peerWindow === 0 && offset === 0 && !this.probeSent;
      const index = this.fragmentIndex;
      const size = DATA_HEADER_SIZE + message.payloads[index]!.length;
      const congested = this.bytesInFlight > 0 && this.bytesInFlight + size > this.congestion.window;
      if (!zeroWindowProbe && (offset >= this.peerWindow || congested)) return;
      if (size > byteBudget) return;
      byteBudget -= size;
      if (zeroWindowProbe) this.probeSent = true;
      if (index === 0) {
        message.started = true;
        message.batch = this.nextBatch;
        this.nextBatch = seqAdd(this.nextBatch, 1);
      }
      const entry: InFlight = {
        type: PacketType.Data,
        connectionId: this.connectionId,
        seq: this.nextSeq,
        batch: message.batch,
        index,
        count: message.payloads.length,
        payload: message.payloads[index]!,
        message,
        lastSentAt: now,
        timerFrom: now,
        transmissions: 1,
        timeouts: 0,
      };
      if (++this.fragmentIndex === message.payloads.length) {
        this.fragmentIndex = 0;
        this.queue[this.queueHead++] = undefined as unknown as OutgoingMessage;
        if (this.queueHead > 64 && this.queueHead * 2 > this.queue.length) {
          this.queue.splice(0, this.queueHead);
          this.queueHead = 0;
        }
      }
      this.entries.push(entry);
      this.unackedCount++;
      this.bytesInFlight += size;
      this.nextSeq = seqAdd(this.nextSeq, 1);
      this.stats.dataPacketsSent++;
      this.sink.transmit(entry);
      if (this.queueHead === this.queue.length && this.redundancy?.duplicate(size, now)) {
        this.stats.redundantSends++;
        this.sink.transmit(entry);
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
    // An older, reordered ack has a cumulative below ours: it releases nothing below it.
    const ahead = seqDiff(ack.cumulative, this.oldest);
    if (ahead < 2 ** 31) for (let i = 0, below = Math.min(ahead, this.span); i < below; i++) this.release(i);
    for (const range of ack.ranges) this.releaseRange(range);
    this.advanceOldest();
    if (tally.bytes === 0) return true;
    this.lastProgressAt = now;
    const sample = tally.sample as InFlight | undefined; // set by release(), which TS does not see
    if (sample !== undefined) this.rtt.sample(now - sample.lastSentAt);
    tally.sample = undefined;
    this.congestion.onAcked(tally.bytes, now);
    this.resendOvertaken(tally.deliveredSentAt, now);
    if (this.acknowledgedMessages.length > 0) {
      const callbacks = this.acknowledgedMessages.splice(0);
      for (const callback of callbacks) callback();
    }
    return true;
  }

  /**
   * Time-based loss detection in the spirit of RACK (RFC 8985): a packet still unacknowledged that
   * was sent a quarter RTT or more before a packet this ack just confirmed was overtaken, so it is
   * lost. Resending now saves the receiver's REPEAT delay, catches a lost resend a round trip
   * before the receiver would ask again, and recovers a burst after a timeout's single resend.
   * The walk stops at the first packet sent once and recently: packets after it left even later.
   */
  private resendOvertaken(deliveredSentAt: number, now: number): void {
    const threshold = deliveredSentAt - (this.rtt.srtt ?? 0) / 4;
    let lossAt = -Infinity;
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i];
      if (e === undefined) continue;
      if (e.lastSentAt >= threshold) {
        if (e.transmissions === 1) break;
        continue;
      }
      if (!this.mayResend(e.seq)) continue;
      if (e.lastSentAt > lossAt) lossAt = e.lastSentAt;
      this.resendLost(e, now);
    }
    if (lossAt === -Infinity) return;
    this.redundancy?.onLoss(now);
    this.congestion.onLoss(lossAt, now);
  }

  /** Resends a packet known lost (REPEAT, or overtaken): at once, no back-off, twice if redundancy is on. */
  private resendLost(e: InFlight, now: number): void {
    this.resend(e, now, e.timeouts);
    this.sink.resent(e, 'repeat');
    // The peer is waiting on this one: a lost resend would cost another round trip.
    if (this.redundancy?.duplicate(DATA_HEADER_SIZE + e.payload.length, now)) {
      this.stats.redundantSends++;
      this.sink.transmit(e);
    }
  }

  /** REPEAT: resend the named packets still unacknowledged, now; a loss signal, not a timeout. */
  onRepeat(ranges: readonly SeqRange[], now: number): void {
    this.redundancy?.onLoss(now);
    let lossAt = -Infinity;
    for (const range of ranges) {
      this.forEachInRange(range, (e) => {
        if (e.lastSentAt > lossAt) lossAt = e.lastSentAt;
        // Resent within half a round trip (overtaken, or a REPEAT just before): this request crossed it.
        if (!this.mayResend(e.seq) || now - e.lastSentAt < (this.rtt.srtt ?? 0) / 2) return;
        this.stats.repeatsAnswered++;
        this.resendLost(e, now);
      });
    }
    if (lossAt !== -Infinity) this.congestion.onLoss(lossAt, now);
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
    if (this.mayResend(earliest.seq)) {
      this.resend(earliest, now, earliest.timeouts + 1);
      this.sink.resent(earliest, 'timeout');
      if (newest !== earliest && newest !== undefined && this.mayResend(newest.seq)) {
        this.resend(newest, now, newest.timeouts);
        this.sink.resent(newest, 'timeout');
      }
    } else earliest.timerFrom = now; // outside the peer's window: wait another timeout
    // A first timeout is often spurious (the RTO sits close to the RTT by PROTOCOL.md §5's formula):
    // treat it as one loss. Only a packet timing out again collapses the window (RFC 9002 §7.6 in spirit).
    if (persistent) this.congestion.onTimeout(now);
    else this.congestion.onLoss(lossAt, now);
  }

  /** Drops everything queued and in flight (the connection closed); tells each waiting message why. */
  clear(error: Error): void {
    const unfinished = new Set<OutgoingMessage>();
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i];
      if (e !== undefined) unfinished.add(e.message);
    }
    for (let i = this.queueHead; i < this.queue.length; i++) unfinished.add(this.queue[i]!);
    this.entries = [];
    this.head = 0;
    this.queue.length = 0;
    this.queueHead = 0;
    this.unackedCount = 0;
    this.bytesInFlight = 0;
    this.bufferedBytes = 0;
    for (const message of unfinished) message.onFailed?.(error);
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
    e.lastSentAt = now;
    e.timerFrom = now;
    this.stats.retransmissions++;
    this.sink.transmit(e);
  }

  private release(offset: number): void {
    const at = this.head + offset;
    const e = this.entries[at];
    if (e === undefined) return;
    this.entries[at] = undefined;
    const tally = this.ackTally;
    tally.bytes += DATA_HEADER_SIZE + e.payload.length;
    if (e.transmissions === 1) {
      // Only packets sent once say WHEN what was delivered left (Karn again): an ack for a resent
      // packet may confirm its original, and a paused peer's late acks would then make a whole
      // window look overtaken.
      if (e.lastSentAt > tally.deliveredSentAt) tally.deliveredSentAt = e.lastSentAt;
      if (tally.sample === undefined || seqAfter(e.seq, tally.sample.seq)) tally.sample = e;
    }
    this.unackedCount--;
    this.bytesInFlight -= DATA_HEADER_SIZE + e.payload.length;
    const message = e.message;
    if (--message.unacked === 0) {
      this.bufferedBytes -= message.size;
      if (message.onAcked !== undefined) this.acknowledgedMessages.push(message.onAcked);
    }
  }

  private releaseRange(range: SeqRange): void {
    const span = this.span;
    let from = seqDiff(range.start, this.oldest);
    let to = seqDiff(range.end, this.oldest);
    if (from >= 2 ** 31) from = 0; // the range starts below our oldest unacknowledged packet
    if (to >= 2 ** 31) return;
    to = Math.min(to, span - 1);
    for (let i = from; i <= to; i++) this.release(i);
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
