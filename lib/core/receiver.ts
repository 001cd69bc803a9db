import { MAX_RANGES, PacketType, type DataPacket, type SeqRange } from '../wire/packet';
import { seqAdd, seqDiff } from '../wire/serial';
import { MemoryAccount, UNBOUNDED } from './memory-budget';
import { ChannelLanes, LaneOutcome, type LanePacket } from './channels/lanes';

/**
 * A block of packets received beyond the cumulative point, with the state of the gap just below
 * it (from the previous block's end, or from `cumulative`): when it was noticed and when it was
 * last asked for. Keeping gap state on the block means a gap that splits keeps its history.
 */
interface Block {
  start: number;
  end: number;
  gapSince: number;
  gapArrival: number;
  gapRequestedAt: number;
}

export enum DataOutcome {
  New,
  Duplicate,
  OutsideWindow,
  /** Inside the window, but the listener's memory bound (maxMemory) has no room for it: dropped, resent later. */
  NoMemory,
  Violation,
}

export interface ReassemblyLimits {
  readonly receiveWindow: number;
  /** Packets of delivered messages the application has not consumed yet, as `deliver` counted them: they keep the window closed. */
  readonly heldPackets?: () => number;
  readonly maxMessageSize: number;
  /**
   * Payload bytes of every packet of a batch but the last at the version-1 size: min(own, peer's
   * maxDatagramSize) - 18. The window's unit: path-MTU probing may make the peer's packets larger,
   * and the window then counts fewer of them, so that it holds no more bytes than receiveWindow
   * packets of this size.
   */
  readonly payloadSize: number;
  /** Where received bytes are claimed (a listener's maxMemory); default unbounded. */
  readonly memory?: MemoryAccount;
  /**
   * Set on a connection that negotiated channels: every new packet goes at once to its channel's
   * reassembly (channels/lanes.ts), whatever its seq, and whole messages to `deliver` with their
   * channel; this receiver then only tracks seqs (acks, window, repeats).
   */
  readonly channels?: {
    readonly maxChannel: number;
    readonly deliver: (channel: number, message: Uint8Array, packets: number) => void;
  };
}

/** Why the peer's data cannot be accepted; the connection closes with `closeReason`. */
export interface Violation {
  readonly closeReason: 2 | 3;
  readonly message: string;
}

const REORDER_THRESHOLD = 3;
const NO_RANGES: readonly SeqRange[] = [];
/** Slots of a receiver's store when first allocated. */
const STORE_INITIAL_SLOTS = 64;

/** What a channels connection stores at a seq received beyond the cumulative point: only that it came. */
const RECEIVED = {} as DataPacket;

/**
 * The receiving half of a connection (PROTOCOL.md §4–§6): accepts DATA inside the receive window,
 * tracks what to acknowledge (cumulative + blocks), notices gaps and when to ask for them
 * (REPEAT), and reassembles whole messages, once each, in batch order.
 */
export class Receiver {
  cumulative: number;
  /**
   * Packets beyond the cumulative point, at `seq & mask`; allocated on the first out-of-order
   * packet, small, and doubled as far out as packets come (at most the window's power of two):
   * idle connections and connections with short gaps stay small, whatever the window.
   */
  private store: (DataPacket | undefined)[] | undefined;
  private mask = STORE_INITIAL_SLOTS - 1;
  private readonly blocks: Block[] = [];
  private arrivals = 0;
  private expectedBatch: number;
  private parts: Uint8Array[] = [];
  private partsBytes = 0;
  private batchCount = 0;
  violation: Violation | undefined;
  private readonly memory: MemoryAccount;
  /** The longest DATA payload the peer has sent: the window counts packets of this size. */
  private largestPayload: number;
  /**
   * Bytes claimed whole for messages whose first packet was accepted beyond the in-order point,
   * by batch, with the payload size of their packets: their later packets need no claim of their
   * own (none may be longer), and none can be stranded half-way.
   */
  private claims: Map<number, { readonly bytes: number; readonly each: number }> | undefined;
  /** Bytes claimed for the message being reassembled. */
  private currentClaim = 0;
  /** The highest seq turned away inside the receive window (no memory, or a window narrowed since the peer sent): asked for again when room comes. */
  private droppedUpTo: number | undefined;
  /** Bytes this receiver holds claimed, stored, reassembling or delivered and not yet consumed. */
  private claimed = 0;
  /** Honest traffic never claims more (two whole messages, two windows): a peer cannot take a listener's whole budget alone. */
  private readonly maxClaimed: number;
  /** Per-channel reassembly, on a connection that negotiated channels. */
  readonly lanes: ChannelLanes | undefined;

  /** Whole messages handed to `deliver` so far. */
  messagesDelivered = 0;
  /** The window of the last DATA_ACK sent (the acknowledge pipeline records it): a window update is due when the window grew well past it. */
  advertisedWindow: number;

  constructor(
    private readonly limits: ReassemblyLimits,
    /** A whole message, and how many packets it took. */
    private readonly deliver: (message: Uint8Array, packets: number) => void,
    initialSeq = 0,
    initialBatch = 0,
  ) {
    this.cumulative = initialSeq;
    this.expectedBatch = initialBatch;
    this.advertisedWindow = limits.receiveWindow;
    this.memory = limits.memory ?? new MemoryAccount(UNBOUNDED());
    this.largestPayload = limits.payloadSize;
    this.maxClaimed = 2 * (limits.maxMessageSize + limits.payloadSize) + 2 * limits.receiveWindow * limits.payloadSize;
    const channels = limits.channels;
    if (channels !== undefined) {
      this.lanes = new ChannelLanes(
        { maxChannel: channels.maxChannel, receiveWindow: limits.receiveWindow, maxMessageSize: limits.maxMessageSize, payloadSize: limits.payloadSize, initialBatch },
        { claim: (bytes, inOrder) => this.claim(bytes, inOrder), release: (bytes) => this.released(bytes) },
        (channel, message, packets) => {
          this.messagesDelivered++;
          channels.deliver(channel, message, this.units(message, packets));
        },
      );
    }
  }

  /**
   * Packets beyond `cumulative` accepted now: the receive window less what the application still
   * holds, and no more than the listener's free memory takes beyond the message being reassembled
   * (but 1, so that the in-order packet, which may draw on the budget's reserve, keeps coming).
   */
  get window(): number {
    const held = this.limits.heldPackets?.() ?? 0;
    const { payloadSize } = this.limits;
    let open = held === 0 ? this.limits.receiveWindow : Math.max(0, this.limits.receiveWindow - held);
    // Packets larger than the unit take several of its places (always one, while nothing is held).
    if (this.largestPayload > payloadSize) open = Math.max(held === 0 ? 1 : 0, Math.floor((open * payloadSize) / this.largestPayload));
    const free = this.memory.budget.sharedFree;
    if (free >= open * this.largestPayload) return open;
    // The rest of the message being reassembled was claimed with its first packet.
    const claimed = this.parts.length > 0 ? this.batchCount - this.parts.length : 0;
    return Math.min(open, Math.max(1, claimed + Math.floor(Math.max(0, free) / this.largestPayload)));
  }

  /** The window places one packet of the peer's current size takes: 1 at the version-1 size, more once path-MTU probing raised it. */
  get placesPerPacket(): number {
    return this.largestPayload / this.limits.payloadSize;
  }

  /** The window places a delivered message of `packets` takes: as many as packets of the unit size would carry it in. */
  private units(message: Uint8Array, packets: number): number {
    return Math.max(packets, Math.ceil(message.length / this.limits.payloadSize));
  }

  /** The application consumed a delivered message of `bytes`: its claim goes back to the budget. */
  released(bytes: number): void {
    this.claimed -= bytes;
    this.memory.release(bytes);
  }

  /** The highest seq received (cumulative − 1 without gaps). */
  get highestReceived(): number {
    const last = this.blocks[this.blocks.length - 1];
    return last === undefined ? seqAdd(this.cumulative, -1) : last.end;
  }

  /** True while some packet beyond the cumulative point is missing. */
  get hasGaps(): boolean {
    return this.blocks.length > 0;
  }

  onData(packet: LanePacket, now: number): DataOutcome {
    const offset = seqDiff(packet.seq, this.cumulative);
    if (offset >= 2 ** 31) return DataOutcome.Duplicate;
    if (offset >= this.window) {
      if (offset < this.limits.receiveWindow) this.turnedAway(packet.seq);
      return DataOutcome.OutsideWindow;
    }
    if ('payload' in packet && packet.payload.length > this.largestPayload) this.largestPayload = packet.payload.length;
    if (this.lanes !== undefined) return this.onLaneData(packet, offset, now, this.lanes);
    if (packet.type !== PacketType.Data) {
      // The route drops channel packets on a connection without channels; this only guards the state.
      this.violate(2, `packet type ${packet.type} on a connection without channels`);
      return DataOutcome.Violation;
    }
    if (!this.fitsBatch(packet)) {
      this.violate(2, `batch ${packet.batch}: packet ${packet.seq} carries ${packet.payload.length} bytes, more than the batch's first packet`);
      return DataOutcome.Violation;
    }
    if (offset === 0) {
      if (!this.claimFor(packet, true)) return this.noMemory(packet.seq);
      if (!this.consume(packet)) return DataOutcome.Violation;
      this.arrivals++;
      return this.drainInOrder() ? DataOutcome.New : DataOutcome.Violation;
    }
    const store = this.storeFor(offset);
    const slot = packet.seq & this.mask;
    if (store[slot] !== undefined) return DataOutcome.Duplicate;
    if (!this.claimFor(packet, false)) return this.noMemory(packet.seq);
    store[slot] = packet;
    this.arrivals++;
    this.insertBlock(packet.seq, now);
    return DataOutcome.New;
  }

  /**
   * A channels connection: the seq is new and inside the window. The packet goes to its channel
   * at once (messages are delivered after the seq state is updated: a delivery may close the
   * connection); the store keeps only that the seq came.
   */
  private onLaneData(packet: LanePacket, offset: number, now: number, lanes: ChannelLanes): DataOutcome {
    if (offset !== 0 && offset <= this.mask && this.store?.[packet.seq & this.mask] !== undefined) return DataOutcome.Duplicate;
    switch (lanes.accept(packet, now, offset === 0)) {
      case LaneOutcome.NoMemory:
        return this.noMemory(packet.seq);
      case LaneOutcome.Violation:
        this.violation = lanes.violation;
        return DataOutcome.Violation;
    }
    this.arrivals++;
    if (offset === 0) {
      this.cumulative = seqAdd(this.cumulative, 1);
      const first = this.blocks[0];
      if (first !== undefined && first.start === this.cumulative) {
        this.blocks.shift();
        for (let seq = first.start; ; seq = seqAdd(seq, 1)) {
          this.store![seq & this.mask] = undefined;
          if (seq === first.end) break;
        }
        this.cumulative = seqAdd(first.end, 1);
      }
    } else {
      this.storeFor(offset)[packet.seq & this.mask] = RECEIVED;
      this.insertBlock(packet.seq, now);
    }
    lanes.flush();
    return DataOutcome.New;
  }

  /** Blocks to report in a DATA_ACK: the 32 lowest. */
  ackRanges(): readonly SeqRange[] {
    if (this.blocks.length === 0) return NO_RANGES;
    const n = Math.min(this.blocks.length, MAX_RANGES);
    const ranges: SeqRange[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const b = this.blocks[i]!;
      ranges[i] = { start: b.start, end: b.end };
    }
    return ranges;
  }

  /**
   * Gaps to ask for now (PROTOCOL.md §6): those seen 3 arrivals ago or `repeatDelay` ms ago, not
   * asked for within `reaskAfter` ms. Marks them asked.
   */
  takeRepeatRanges(now: number, repeatDelay: number, reaskAfter: number): SeqRange[] {
    const ranges: SeqRange[] = [];
    let gapStart = this.cumulative;
    for (const b of this.blocks) {
      if (ranges.length === MAX_RANGES) break;
      const ripe = this.arrivals - b.gapArrival + 1 >= REORDER_THRESHOLD || now - b.gapSince >= repeatDelay;
      if (ripe && now - b.gapRequestedAt >= reaskAfter) {
        ranges.push({ start: gapStart, end: seqAdd(b.start, -1) });
        b.gapRequestedAt = now;
      }
      gapStart = seqAdd(b.end, 1);
    }
    return ranges;
  }

  /** When `takeRepeatRanges` could next return something (Infinity without gaps). */
  nextRepeatTime(repeatDelay: number, reaskAfter: number): number {
    let earliest = Infinity;
    for (const b of this.blocks) {
      const t = b.gapRequestedAt === -Infinity ? b.gapSince + repeatDelay : b.gapRequestedAt + reaskAfter;
      if (t < earliest) earliest = t;
    }
    return earliest;
  }

  /**
   * The gaps up to the highest packet turned away, to ask for again (REPEAT) now that there is
   * room: the peer's timers for them may have backed off for seconds. Forgets them.
   */
  takeTurnedAway(): readonly SeqRange[] {
    const upTo = this.droppedUpTo;
    // The usual case (called as each message is consumed): nothing was turned away, nothing allocated.
    if (upTo === undefined) return NO_RANGES;
    this.droppedUpTo = undefined;
    if (seqDiff(upTo, this.cumulative) >= 2 ** 31) return NO_RANGES;
    const ranges: SeqRange[] = [];
    let gapStart = this.cumulative;
    for (const b of this.blocks) {
      if (seqDiff(b.start, upTo) > 0 && seqDiff(b.start, upTo) < 2 ** 31) break;
      if (b.start !== gapStart) ranges.push({ start: gapStart, end: seqAdd(b.start, -1) });
      gapStart = seqAdd(b.end, 1);
      if (ranges.length === MAX_RANGES) return ranges;
    }
    if (seqDiff(upTo, gapStart) < 2 ** 31) ranges.push({ start: gapStart, end: upTo });
    return ranges;
  }

  /** Remembers a packet dropped inside the receive window; room anywhere on the listener (or the application consuming) asks for it again. */
  private turnedAway(seq: number): void {
    if (this.droppedUpTo === undefined || seqDiff(seq, this.droppedUpTo) < 2 ** 31) this.droppedUpTo = seq;
    this.memory.waitForRoom();
  }

  private noMemory(seq: number): DataOutcome {
    this.turnedAway(seq);
    return DataOutcome.NoMemory;
  }

  /** Releases buffered packets (the connection closed; the connection's memory account gives back its claims). */
  clear(): void {
    this.lanes?.clear();
    this.claims = undefined;
    this.store = undefined;
    this.blocks.length = 0;
    this.parts = [];
    this.partsBytes = 0;
  }

  private insertBlock(seq: number, now: number): void {
    const blocks = this.blocks;
    const offset = seqDiff(seq, this.cumulative);
    let i = 0;
    while (i < blocks.length && seqDiff(blocks[i]!.start, this.cumulative) < offset) i++;
    const prev = i > 0 ? blocks[i - 1] : undefined;
    const next = blocks[i];
    const joinsPrev = prev !== undefined && seqAdd(prev.end, 1) === seq;
    const joinsNext = next !== undefined && seqAdd(seq, 1) === next.start;
    if (joinsPrev && joinsNext) {
      prev.end = next.end;
      blocks.splice(i, 1);
    } else if (joinsPrev) {
      prev.end = seq;
    } else if (joinsNext) {
      next.start = seq;
    } else if (next !== undefined) {
      // Inside an existing gap: the lower part keeps the gap's history.
      blocks.splice(i, 0, { start: seq, end: seq, gapSince: next.gapSince, gapArrival: next.gapArrival, gapRequestedAt: next.gapRequestedAt });
    } else {
      blocks.push({ start: seq, end: seq, gapSince: now, gapArrival: this.arrivals, gapRequestedAt: -Infinity });
    }
  }

  /**
   * Every packet of a batch carries at most what its first does (all but the last exactly as
   * much: PROTOCOL.md §4, docs/protocol.md §13.3), so a whole-message claim always covers the rest.
   */
  private fitsBatch(packet: DataPacket): boolean {
    if (packet.count === 1 || packet.index === 0) return true;
    const length = packet.payload.length;
    if (packet.batch === this.expectedBatch && this.parts.length > 0) return length <= this.parts[0]!.length;
    const claim = this.claims?.get(packet.batch);
    return claim === undefined || length <= claim.each;
  }

  /**
   * Claims what accepting `packet` needs: its own bytes, or for the first packet of a message of
   * several, the whole message (count × its payload size, less its packets already stored), so that
   * its later packets always fit. `inOrder`: it is at the cumulative point (may use the reserve).
   */
  private claimFor(packet: DataPacket, inOrder: boolean): boolean {
    if (packet.count > 1) {
      // A later packet of a message claimed whole.
      if (packet.batch === this.expectedBatch && this.parts.length > 0) return true;
      if (this.claims?.has(packet.batch) === true) return true;
      if (packet.index === 0) {
        const { maxMessageSize } = this.limits;
        const each = packet.payload.length;
        const whole = packet.count * each;
        // Beyond maxMessageSize the reassembly closes the connection when it reaches it; claim only what is stored.
        if (whole <= maxMessageSize + each) {
          const stored = this.storedBytesOf(packet);
          const claim = Math.max(0, whole - stored);
          if (!this.claim(claim, inOrder)) return false;
          (this.claims ??= new Map()).set(packet.batch, { bytes: claim + stored, each });
          return true;
        }
      }
    }
    return this.claim(packet.payload.length, inOrder);
  }

  private claim(bytes: number, inOrder: boolean): boolean {
    if (this.claimed + bytes > this.maxClaimed || !this.memory.claim(bytes, inOrder)) return false;
    this.claimed += bytes;
    return true;
  }

  /** The store, with room for a packet `offset` beyond the cumulative point (offsets stay below the window, so slots never collide). */
  private storeFor(offset: number): (DataPacket | undefined)[] {
    const store = this.store;
    if (store !== undefined && offset <= this.mask) return store;
    let capacity = this.mask + 1;
    while (capacity <= offset) capacity *= 2;
    const grown = new Array<DataPacket | undefined>(capacity);
    // Everything stored lies in a block: move it to its slot under the new mask.
    if (store !== undefined) {
      for (const block of this.blocks) {
        for (let seq = block.start; ; seq = seqAdd(seq, 1)) {
          grown[seq & (capacity - 1)] = store[seq & this.mask];
          if (seq === block.end) break;
        }
      }
    }
    this.store = grown;
    this.mask = capacity - 1;
    return grown;
  }

  /** Bytes of `first`'s message already stored (its packets that came before it, each claimed alone). */
  private storedBytesOf(first: DataPacket): number {
    const store = this.store;
    if (store === undefined || this.blocks.length === 0) return 0;
    let bytes = 0;
    const from = seqDiff(first.seq, this.cumulative);
    const to = Math.min(from + first.count, this.mask + 1);
    for (let offset = from + 1; offset < to; offset++) {
      const packet = store[seqAdd(this.cumulative, offset) & this.mask];
      if (packet !== undefined && packet.batch === first.batch && seqDiff(packet.seq, this.cumulative) === offset) bytes += packet.payload.length;
    }
    return bytes;
  }

  /** Moves the cumulative point over packets already stored beyond it. */
  private drainInOrder(): boolean {
    const first = this.blocks[0];
    if (first === undefined || first.start !== this.cumulative) return true;
    this.blocks.shift();
    for (let seq = first.start; ; seq = seqAdd(seq, 1)) {
      const slot = seq & this.mask;
      const packet = this.store?.[slot];
      if (packet === undefined) return true; // cleared: the application closed during delivery
      this.store![slot] = undefined;
      if (!this.consume(packet)) return false;
      if (seq === first.end) return true;
    }
  }

  /** Takes the packet at `cumulative` into the message being reassembled. */
  private consume(packet: DataPacket): boolean {
    this.cumulative = seqAdd(this.cumulative, 1);
    const { payloadSize, maxMessageSize } = this.limits;
    if (this.parts.length === 0) {
      if (packet.index !== 0 || packet.batch !== this.expectedBatch) {
        return this.violate(2, `expected batch ${this.expectedBatch} index 0, got batch ${packet.batch} index ${packet.index}`);
      }
      this.batchCount = packet.count;
      if (packet.count > 1) {
        this.currentClaim = this.claims?.get(packet.batch)?.bytes ?? 0;
        this.claims?.delete(packet.batch);
      }
      const smallest = (packet.count - 1) * packet.payload.length + (packet.count > 1 ? 1 : 0);
      if (smallest > maxMessageSize) {
        return this.violate(3, `incoming message of at least ${smallest} bytes exceeds maxMessageSize ${maxMessageSize}`);
      }
    } else if (packet.batch !== this.expectedBatch || packet.index !== this.parts.length || packet.count !== this.batchCount) {
      return this.violate(2, `batch ${this.expectedBatch}: packet ${packet.seq} has batch ${packet.batch} index ${packet.index}/${packet.count}, expected index ${this.parts.length}/${this.batchCount}`);
    }
    this.partsBytes += packet.payload.length;
    if (this.partsBytes > maxMessageSize) {
      return this.violate(3, `incoming message exceeds maxMessageSize ${maxMessageSize} bytes`);
    }
    if (packet.index + 1 < packet.count) {
      this.parts.push(packet.payload);
      return true;
    }
    const message = this.parts.length === 0 ? packet.payload : concat(this.parts, packet.payload, this.partsBytes);
    if (packet.count > 1) {
      // The whole-message claim becomes the message's own size, held until the application consumes it.
      const slack = this.currentClaim - this.partsBytes;
      this.currentClaim = 0;
      if (slack > 0) {
        this.claimed -= slack;
        this.memory.release(slack);
      }
    }
    this.parts = [];
    this.partsBytes = 0;
    this.expectedBatch = seqAdd(this.expectedBatch, 1);
    this.messagesDelivered++;
    this.deliver(message, this.units(message, this.batchCount));
    return true;
  }

  private violate(closeReason: 2 | 3, message: string): false {
    this.violation = { closeReason, message };
    return false;
  }
}

function concat(parts: Uint8Array[], last: Uint8Array, total: number): Uint8Array {
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  out.set(last, at);
  return out;
}
