import { ChannelPacketType, FLAG_UNORDERED, type AbandonPacket, type ChannelDataPacket } from '../../wire/channels';
import { PacketType, type DataPacket } from '../../wire/packet';
import { seqAdd, seqDiff } from '../../wire/serial';
import type { Violation } from '../receiver';

/** A packet the lanes take: DATA (channel 0), CHANNEL_DATA, or ABANDON. */
export type LanePacket = DataPacket | ChannelDataPacket | AbandonPacket;

export const LaneOutcome = { Accepted: 0, NoMemory: 1, Violation: 2 } as const;
export type LaneOutcome = (typeof LaneOutcome)[keyof typeof LaneOutcome];

/** Where the lanes claim the bytes they hold (the receiver's tally, then the listener's maxMemory). */
export interface LaneMemory {
  claim(bytes: number, inOrder: boolean): boolean;
  release(bytes: number): void;
}

export interface LaneLimits {
  /** Highest channel id the connection negotiated. */
  readonly maxChannel: number;
  readonly receiveWindow: number;
  readonly maxMessageSize: number;
  /** Payload bytes of a DATA packet (channel 0); CHANNEL_DATA carries 5 fewer. */
  readonly payloadSize: number;
  /** Channel 0's first batch (a test hook of the connection). */
  readonly initialBatch?: number;
}

const PARTIAL = 0;
const COMPLETE = 1;
const DONE = 2;

/** A message beyond a channel's delivery point: being reassembled, whole and waiting its turn, or done (delivered or skipped). */
interface Batch {
  state: typeof PARTIAL | typeof COMPLETE | typeof DONE;
  readonly count: number;
  parts: (Uint8Array | undefined)[] | undefined;
  received: number;
  bytes: number;
  /** Bytes claimed for it: the whole message (count × payload) until it is whole, then its size. */
  claim: number;
  /** Receiver's deadline: first arrival + the ttl that packet carried; Infinity without one. */
  deadline: number;
  message: Uint8Array | undefined;
}

/** Shared by every batch done beyond the delivery point: it only has to be skipped. */
const DONE_BATCH: Batch = { state: DONE, count: 0, parts: undefined, received: 0, bytes: 0, claim: 0, deadline: Infinity, message: undefined };

/** One channel's receive state: the next batch to deliver, and what waits beyond it. */
interface Lane {
  floor: number;
  readonly batches: Map<number, Batch>;
}

/**
 * Per-channel reassembly and delivery (docs/protocol.md §13.2) on a connection that negotiated
 * channels. The receiver hands it every new packet at once, whatever its `seq`, so a loss on one
 * channel delays no other: each channel reassembles its own batches and delivers them in batch
 * order (or, for unordered messages, as soon as each is whole). ABANDON marks a batch done, and
 * the delivery point moves past it. A message whose deadline passed before its turn came is
 * dropped, never delivered late.
 *
 * Memory: only batches beyond a delivery point are kept, and those all have packets inside the
 * receive window (the delivery point's batch is missing a packet no later than theirs), so a
 * batch further ahead than the window is a protocol violation. Lanes exist only for channels the
 * peer used.
 */
export class ChannelLanes {
  violation: Violation | undefined;
  /** Messages dropped because their deadline passed before their turn. */
  expired = 0;
  private lanes: (Lane | undefined)[] | undefined;
  /** Whole messages ready, delivered by flush() once the receiver's state is consistent. */
  private readonly ready: { channel: number; message: Uint8Array; packets: number }[] = [];
  private cleared = false;

  constructor(
    private readonly limits: LaneLimits,
    private readonly memory: LaneMemory,
    private readonly deliver: (channel: number, message: Uint8Array, packets: number) => void,
  ) {}

  /**
   * A new packet (the receiver checked its `seq`): stores it, claims memory for its message, and
   * queues what became deliverable. `inOrder`: it is at the cumulative point (may use the reserve).
   */
  accept(packet: LanePacket, now: number, inOrder: boolean): LaneOutcome {
    const channel = packet.type === PacketType.Data ? 0 : packet.channel;
    const { maxChannel, receiveWindow } = this.limits;
    if (channel > maxChannel) return this.violate(2, `packet on channel ${channel}, beyond the highest channel negotiated (${maxChannel})`);
    const lane = this.lane(channel);
    const ahead = seqDiff(packet.batch, lane.floor);
    if (ahead >= 2 ** 31) return LaneOutcome.Accepted; // a message already delivered or skipped: only its seq mattered
    if (ahead > receiveWindow) {
      return this.violate(2, `channel ${channel}: batch ${packet.batch} is ${ahead} beyond the delivery point ${lane.floor}, more than the receive window allows`);
    }
    const batch = lane.batches.get(packet.batch);
    if (packet.type === ChannelPacketType.Abandon) return this.abandon(lane, channel, packet, batch, now);
    if (batch === DONE_BATCH) return LaneOutcome.Accepted; // skipped before this copy came (reordered)
    const unordered = packet.type === ChannelPacketType.ChannelData && (packet.flags & FLAG_UNORDERED) !== 0;
    const ttl = packet.type === ChannelPacketType.ChannelData ? packet.ttl : 0;
    if (batch === undefined) {
      const payloadSize = channel === 0 ? this.limits.payloadSize : this.limits.payloadSize - 5;
      // A packet other than the last shows the size of all but the last (path-MTU probing may have raised it).
      const each = packet.index + 1 < packet.count ? Math.max(payloadSize, packet.payload.length) : payloadSize;
      const smallest = (packet.count - 1) * each + (packet.count > 1 ? 1 : 0);
      if (smallest > this.limits.maxMessageSize) {
        return this.violate(3, `incoming message of at least ${smallest} bytes on channel ${channel} exceeds maxMessageSize ${this.limits.maxMessageSize}`);
      }
      if (packet.count === 1) return this.whole(lane, channel, packet.batch, packet.payload, unordered, ttl === 0 ? Infinity : now + ttl, now, inOrder);
      // The first packet to arrive claims the whole message, so that its others always fit.
      const claim = packet.count * each;
      if (!this.memory.claim(claim, inOrder)) return LaneOutcome.NoMemory;
      const fresh: Batch = { state: PARTIAL, count: packet.count, parts: new Array(packet.count), received: 0, bytes: 0, claim, deadline: ttl === 0 ? Infinity : now + ttl, message: undefined };
      lane.batches.set(packet.batch, fresh);
      return this.add(lane, channel, packet, fresh, unordered, now);
    }
    if (batch.state !== PARTIAL || packet.count !== batch.count || batch.parts![packet.index] !== undefined) {
      return this.violate(2, `channel ${channel} batch ${packet.batch}: packet ${packet.seq} (index ${packet.index}/${packet.count}) contradicts the packets already received`);
    }
    return this.add(lane, channel, packet, batch, unordered, now);
  }

  /** Batches kept beyond the delivery points of all channels (being reassembled, waiting, or done out of turn). */
  get heldBatches(): number {
    let n = 0;
    for (const lane of this.lanes ?? []) if (lane !== undefined) n += lane.batches.size;
    return n;
  }

  /** Delivers the messages made ready by the packets accepted since the last flush. */
  flush(): void {
    const ready = this.ready;
    if (ready.length === 0) return;
    for (let i = 0; i < ready.length && !this.cleared; i++) {
      const r = ready[i]!;
      this.deliver(r.channel, r.message, r.packets);
    }
    ready.length = 0;
  }

  /** The connection closed: everything goes (its memory account gives the claims back). */
  clear(): void {
    this.cleared = true;
    this.lanes = undefined;
    this.ready.length = 0;
  }

  private lane(channel: number): Lane {
    const lanes = (this.lanes ??= new Array<Lane | undefined>(this.limits.maxChannel + 1));
    let lane = lanes[channel];
    if (lane === undefined) lanes[channel] = lane = { floor: channel === 0 ? (this.limits.initialBatch ?? 0) : 0, batches: new Map() };
    return lane;
  }

  private add(lane: Lane, channel: number, packet: DataPacket | ChannelDataPacket, batch: Batch, unordered: boolean, now: number): LaneOutcome {
    const length = packet.payload.length;
    // Longer packets than the claim assumed (a peer with a larger maxDatagramSize): claim the excess.
    if (batch.bytes + length > batch.claim) {
      const excess = batch.bytes + length - batch.claim;
      if (!this.memory.claim(excess, false)) return LaneOutcome.NoMemory;
      batch.claim += excess;
    }
    batch.parts![packet.index] = packet.payload;
    batch.received++;
    batch.bytes += length;
    if (batch.bytes > this.limits.maxMessageSize) return this.violate(3, `incoming message on channel ${channel} exceeds maxMessageSize ${this.limits.maxMessageSize} bytes`);
    if (batch.received < batch.count) return LaneOutcome.Accepted;
    const message = concat(batch.parts!, batch.bytes);
    // The whole-message claim becomes the message's own size, held until the application consumes it.
    this.memory.release(batch.claim - batch.bytes);
    batch.claim = batch.bytes;
    batch.parts = undefined;
    batch.message = message;
    if (unordered) {
      this.makeReady(channel, batch, now);
      lane.batches.set(packet.batch, DONE_BATCH);
    } else batch.state = COMPLETE;
    this.advance(lane, channel, now);
    return LaneOutcome.Accepted;
  }

  /** A one-packet message: the usual case, with no map entry when it is next in turn. */
  private whole(lane: Lane, channel: number, batchNumber: number, payload: Uint8Array, unordered: boolean, deadline: number, now: number, inOrder: boolean): LaneOutcome {
    if (!this.memory.claim(payload.length, inOrder)) return LaneOutcome.NoMemory;
    const batch: Batch = { state: COMPLETE, count: 1, parts: undefined, received: 1, bytes: payload.length, claim: payload.length, deadline, message: payload };
    if (batchNumber === lane.floor || unordered) {
      this.makeReady(channel, batch, now);
      if (batchNumber === lane.floor) {
        lane.floor = seqAdd(lane.floor, 1);
        if (lane.batches.size > 0) this.advance(lane, channel, now);
      } else lane.batches.set(batchNumber, DONE_BATCH);
      return LaneOutcome.Accepted;
    }
    lane.batches.set(batchNumber, batch);
    return LaneOutcome.Accepted;
  }

  private abandon(lane: Lane, channel: number, packet: AbandonPacket, batch: Batch | undefined, now: number): LaneOutcome {
    if (batch === DONE_BATCH) return LaneOutcome.Accepted;
    if (batch !== undefined) {
      if (batch.count !== packet.count) return this.violate(2, `channel ${channel} batch ${packet.batch}: ABANDON says ${packet.count} packets, its data said ${batch.count}`);
      this.memory.release(batch.claim); // what was received of it is never delivered
    }
    lane.batches.set(packet.batch, DONE_BATCH);
    this.advance(lane, channel, now);
    return LaneOutcome.Accepted;
  }

  /** Moves the delivery point over whole messages (delivered) and done ones (skipped). */
  private advance(lane: Lane, channel: number, now: number): void {
    const batches = lane.batches;
    for (;;) {
      const batch = batches.get(lane.floor);
      if (batch === undefined || batch.state === PARTIAL) return;
      if (batch.state === COMPLETE) this.makeReady(channel, batch, now);
      batches.delete(lane.floor);
      lane.floor = seqAdd(lane.floor, 1);
    }
  }

  /** Queues a whole message for delivery, unless its deadline passed while it waited (then its bytes go back). */
  private makeReady(channel: number, batch: Batch, now: number): void {
    if (now > batch.deadline) {
      this.expired++;
      this.memory.release(batch.claim);
      return;
    }
    this.ready.push({ channel, message: batch.message!, packets: batch.count });
  }

  private violate(closeReason: 2 | 3, message: string): LaneOutcome {
    this.violation = { closeReason, message };
    return LaneOutcome.Violation;
  }
}

function concat(parts: (Uint8Array | undefined)[], total: number): Uint8Array {
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const p of parts) {
    out.set(p!, at);
    at += p!.length;
  }
  return out;
}
