/**
 * The packets of the "channels" extension (docs/protocol.md §13.2, id 0x0002): CHANNEL_DATA, a
 * DATA packet that names its channel, its delivery (ordered or not) and the time it has left, and
 * ABANDON, which takes the place of a packet the sender gave up on, so that the receiver counts
 * its `seq` as received and skips its message. Channel 0 keeps plain DATA.
 */
import type { DecodeError } from './packet';

export const CHANNELS_EXTENSION_ID = 0x0002;

export const ChannelPacketType = {
  ChannelData: 0x10,
  Abandon: 0x11,
} as const;

/** Header (6) + seq, batch, index, count, channel, flags, ttl. */
export const CHANNEL_DATA_HEADER_SIZE = 23;
/** Header (6) + seq, batch, index, count, channel: no payload. */
export const ABANDON_SIZE = 20;
/** CHANNEL_DATA flags: bit 0, the message may be delivered as soon as it is whole. Other bits are reserved (zero). */
export const FLAG_UNORDERED = 0x01;
/** Largest `ttl` the field holds, in ms. */
export const MAX_TTL_MS = 0xffff;

export interface ChannelDataPacket {
  readonly type: typeof ChannelPacketType.ChannelData;
  readonly connectionId: number;
  readonly seq: number;
  /** Batch number within the channel: 0 for the channel's first message, +1 for each. */
  readonly batch: number;
  readonly index: number;
  readonly count: number;
  /** 1..65535: channel 0 is plain DATA. */
  readonly channel: number;
  readonly flags: number;
  /** Milliseconds the sender still tries to deliver the message, as of this packet's sending; 0: until acknowledged. */
  readonly ttl: number;
  readonly payload: Uint8Array;
}

export interface AbandonPacket {
  readonly type: typeof ChannelPacketType.Abandon;
  readonly connectionId: number;
  readonly seq: number;
  readonly batch: number;
  readonly index: number;
  readonly count: number;
  readonly channel: number;
}

export type ChannelPacket = ChannelDataPacket | AbandonPacket;

export function isChannelPacketType(type: number): boolean {
  return type === ChannelPacketType.ChannelData || type === ChannelPacketType.Abandon;
}

export function channelPacketLength(packet: ChannelPacket): number {
  return packet.type === ChannelPacketType.Abandon ? ABANDON_SIZE : CHANNEL_DATA_HEADER_SIZE + packet.payload.length;
}

/** Writes the body of `packet` into `buf` (sized by channelPacketLength, header written by the caller). */
export function writeChannelPacket(buf: Buffer, packet: ChannelPacket): void {
  buf.writeUInt32BE(packet.seq, 6);
  buf.writeUInt32BE(packet.batch, 10);
  buf.writeUInt16BE(packet.index, 14);
  buf.writeUInt16BE(packet.count, 16);
  buf.writeUInt16BE(packet.channel, 18);
  if (packet.type === ChannelPacketType.Abandon) return;
  buf[20] = packet.flags;
  buf.writeUInt16BE(packet.ttl, 21);
  buf.set(packet.payload, CHANNEL_DATA_HEADER_SIZE);
}

function fail(error: DecodeError['error'], detail: string): DecodeError {
  return { error, detail };
}

/** CHANNEL_DATA or ABANDON from `bytes` (type and connection id already checked), or why not. */
export function readChannelPacket(type: number, connectionId: number, bytes: Uint8Array, view: DataView): ChannelPacket | DecodeError {
  const length = bytes.length;
  if (type === ChannelPacketType.Abandon ? length !== ABANDON_SIZE : length < CHANNEL_DATA_HEADER_SIZE) {
    return fail('bad-length', `${length} bytes for type ${type}`);
  }
  const index = view.getUint16(14);
  const count = view.getUint16(16);
  const channel = view.getUint16(18);
  if (count === 0) return fail('bad-field', 'count 0');
  if (index >= count) return fail('bad-field', `index ${index} >= count ${count}`);
  if (channel === 0) return fail('bad-field', 'channel 0 (its messages travel as DATA)');
  const seq = view.getUint32(6);
  const batch = view.getUint32(10);
  if (type === ChannelPacketType.Abandon) return { type, connectionId, seq, batch, index, count, channel };
  const flags = view.getUint8(20);
  if ((flags & ~FLAG_UNORDERED) !== 0) return fail('bad-field', `reserved flag bits in ${flags}`);
  if (length === CHANNEL_DATA_HEADER_SIZE && count !== 1) return fail('bad-length', `empty payload in a batch of ${count}`);
  return {
    type: ChannelPacketType.ChannelData,
    connectionId,
    seq,
    batch,
    index,
    count,
    channel,
    flags,
    ttl: view.getUint16(21),
    payload: bytes.subarray(CHANNEL_DATA_HEADER_SIZE),
  };
}
