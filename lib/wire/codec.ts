/**
 * Bytes <-> packets, exactly as PROTOCOL.md §1–§9 lay them out. Pure: no I/O, no time,
 * no connection state. `decode` validates everything a single datagram can show and returns a
 * `DecodeError` value instead of throwing, because every byte it sees comes from the network.
 */

import {
  CONNECT_ACK_SIZE,
  CONNECT_MIN_SIZE,
  DATA_HEADER_SIZE,
  HEADER_SIZE,
  MAX_CLOSE_TEXT_BYTES,
  MAX_DATAGRAM_SIZE,
  MAX_RANGES,
  MIN_DATAGRAM_SIZE,
  PING_SIZE,
  PROTOCOL_VERSION,
  PacketType,
  type DecodeError,
  type DecodeErrorCode,
  type Packet,
  type SeqRange,
} from './packet';
import { seqAdd, seqAfter, seqDiff } from './serial';
import { extensionListLength, hasExtensionMarker, readExtensionList, writeExtensionList } from './extensions';
import { ChannelPacketType, channelPacketLength, isChannelPacketType, readChannelPacket, writeChannelPacket } from './channels';
import { ProbePacketType, isProbePacketType, probePacketLength, readProbePacket, writeProbePacket } from './path-mtu';

const DATA_ACK_MIN_SIZE = HEADER_SIZE + 7;
const REPEAT_MIN_SIZE = HEADER_SIZE + 1;
const CLOSE_MIN_SIZE = HEADER_SIZE + 1;
const CLOSE_MAX_SIZE = CLOSE_MIN_SIZE + MAX_CLOSE_TEXT_BYTES;
const RANGE_SIZE = 8;

// fatal: invalid UTF-8 makes the packet invalid instead of becoming U+FFFD.
// ignoreBOM: keep a leading U+FEFF in the text, so decode and encode stay exact inverses.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The size in bytes of `encode(packet)`. */
export function encodedLength(packet: Packet): number {
  switch (packet.type) {
    case PacketType.Connect: {
      const offer = packet.extensions === undefined ? 0 : CONNECT_ACK_SIZE + extensionListLength(packet.extensions);
      return Math.max(CONNECT_MIN_SIZE, packet.paddedSize ?? 0, offer);
    }
    case PacketType.ConnectAck:
      return packet.extensions === undefined || packet.extensions.length === 0 ? CONNECT_ACK_SIZE : CONNECT_ACK_SIZE + extensionListLength(packet.extensions);
    case PacketType.Data:
      return DATA_HEADER_SIZE + packet.payload.length;
    case PacketType.DataAck:
      return DATA_ACK_MIN_SIZE + RANGE_SIZE * packet.ranges.length;
    case PacketType.Repeat:
      return REPEAT_MIN_SIZE + RANGE_SIZE * packet.ranges.length;
    case PacketType.Ping:
    case PacketType.PingAck:
      return PING_SIZE;
    case PacketType.Close:
      return CLOSE_MIN_SIZE + Buffer.byteLength(packet.text, 'utf8');
    case PacketType.Direct:
      return HEADER_SIZE + packet.payload.length;
    case ChannelPacketType.ChannelData:
    case ChannelPacketType.Abandon:
      return channelPacketLength(packet);
    case ProbePacketType.Probe:
    case ProbePacketType.ProbeAck:
      return probePacketLength(packet);
  }
}

/** Spare bytes around an encoding, for a wrapper (a sealed packet) to be built in the same buffer. */
export interface EncodingRoom {
  readonly before: number;
  readonly after: number;
}

/**
 * The datagram for `packet`. Assumes the packet is valid (as `decode` would accept it);
 * it does not check, so that the DATA hot path costs one allocation and one payload copy.
 * With `room`, the returned buffer holds `room.before` unset bytes, the datagram, then
 * `room.after` unset bytes (not for CONNECT, whose padding must be zeros).
 */
export function encode(packet: Packet, room?: EncodingRoom): Buffer {
  const length = encodedLength(packet);
  // CONNECT's padding must be zeros; every other packet overwrites all of its bytes.
  const whole = packet.type === PacketType.Connect ? Buffer.alloc(length) : Buffer.allocUnsafe(room === undefined ? length : room.before + length + room.after);
  const buf = room === undefined ? whole : whole.subarray(room.before, room.before + length);
  buf[0] = PROTOCOL_VERSION;
  buf[1] = packet.type;
  buf.writeUInt32BE(packet.connectionId, 2);
  switch (packet.type) {
    case PacketType.Connect:
    case PacketType.ConnectAck:
      buf.writeUInt16BE(packet.maxDatagramSize, 6);
      buf.writeUInt16BE(packet.receiveWindow, 8);
      buf.writeUInt32BE(packet.nonce, 10);
      if (length > CONNECT_ACK_SIZE && packet.extensions !== undefined) writeExtensionList(buf, CONNECT_ACK_SIZE, packet.extensions);
      break;
    case PacketType.Data:
      buf.writeUInt32BE(packet.seq, 6);
      buf.writeUInt32BE(packet.batch, 10);
      buf.writeUInt16BE(packet.index, 14);
      buf.writeUInt16BE(packet.count, 16);
      buf.set(packet.payload, DATA_HEADER_SIZE);
      break;
    case PacketType.DataAck:
      buf.writeUInt32BE(packet.cumulative, 6);
      buf.writeUInt16BE(packet.window, 10);
      buf[12] = packet.ranges.length;
      writeRanges(buf, DATA_ACK_MIN_SIZE, packet.ranges);
      break;
    case PacketType.Repeat:
      buf[6] = packet.ranges.length;
      writeRanges(buf, REPEAT_MIN_SIZE, packet.ranges);
      break;
    case PacketType.Ping:
    case PacketType.PingAck:
      buf.writeUInt32BE(packet.nonce, 6);
      break;
    case PacketType.Close:
      buf[6] = packet.reason;
      buf.write(packet.text, CLOSE_MIN_SIZE, 'utf8');
      break;
    case PacketType.Direct:
      buf.set(packet.payload, HEADER_SIZE);
      break;
    case ChannelPacketType.ChannelData:
    case ChannelPacketType.Abandon:
      writeChannelPacket(buf, packet);
      break;
    case ProbePacketType.Probe:
    case ProbePacketType.ProbeAck:
      writeProbePacket(buf, packet);
      break;
  }
  return whole;
}

function writeRanges(buf: Buffer, offset: number, ranges: readonly SeqRange[]): void {
  for (const range of ranges) {
    buf.writeUInt32BE(range.start, offset);
    buf.writeUInt32BE(range.end, offset + 4);
    offset += RANGE_SIZE;
  }
}

function fail(error: DecodeErrorCode, detail: string): DecodeError {
  return { error, detail };
}

/**
 * The packet in `bytes`, or why it is not one. Never throws.
 * DATA and DIRECT payloads are views into `bytes` (no copy): the caller must not reuse the
 * datagram's memory while the payload is alive.
 *
 * `maxDatagramSize` is the receiver's own limit (PROTOCOL.md §1: longer datagrams are dropped);
 * it defaults to the protocol's absolute maximum, 65507.
 */
export function decode(bytes: Uint8Array, maxDatagramSize: number = MAX_DATAGRAM_SIZE): Packet | DecodeError {
  const length = bytes.length;
  if (length < HEADER_SIZE) return fail('too-short', `${length} bytes, the header alone is ${HEADER_SIZE}`);
  if (length > maxDatagramSize) return fail('bad-length', `${length} bytes exceeds maxDatagramSize ${maxDatagramSize}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, length);
  const version = view.getUint8(0);
  if (version !== PROTOCOL_VERSION) return fail('bad-version', `version ${version}`);
  const type = view.getUint8(1);
  const connectionId = view.getUint32(2);
  if ((type < PacketType.Connect || type > PacketType.Direct) && !isChannelPacketType(type) && !isProbePacketType(type)) return fail('bad-type', `type ${type}`);
  if (connectionId === 0) return fail('bad-connection-id', 'connectionId 0');
  // Extension packets (docs/protocol.md §13.2, §13.3); a connection that did not negotiate them drops them.
  if (isChannelPacketType(type)) return readChannelPacket(type, connectionId, bytes, view);
  if (isProbePacketType(type)) return readProbePacket(type, connectionId, bytes, view);

  switch (type) {
    case PacketType.Connect:
    case PacketType.ConnectAck: {
      // CONNECT_ACK is longer only to carry a §12 answer, which must then parse.
      if (type === PacketType.Connect ? length < CONNECT_MIN_SIZE : length !== CONNECT_ACK_SIZE && !hasExtensionMarker(bytes, CONNECT_ACK_SIZE)) {
        return fail('bad-length', `${length} bytes for type ${type}`);
      }
      const maxDatagramSize = view.getUint16(6);
      const receiveWindow = view.getUint16(8);
      if (maxDatagramSize < MIN_DATAGRAM_SIZE || maxDatagramSize > MAX_DATAGRAM_SIZE) {
        return fail('bad-field', `maxDatagramSize ${maxDatagramSize}`);
      }
      if (receiveWindow === 0) return fail('bad-field', 'receiveWindow 0');
      const nonce = view.getUint32(10);
      // Padding that does not start with the marker is no offer (PROTOCOL.md §12), whatever it holds.
      if (!hasExtensionMarker(bytes, CONNECT_ACK_SIZE)) return { type, connectionId, maxDatagramSize, receiveWindow, nonce };
      const extensions = readExtensionList(bytes, CONNECT_ACK_SIZE);
      if (!Array.isArray(extensions)) return extensions;
      return { type, connectionId, maxDatagramSize, receiveWindow, nonce, extensions };
    }

    case PacketType.Data: {
      if (length < DATA_HEADER_SIZE) return fail('bad-length', `DATA of ${length} bytes`);
      const index = view.getUint16(14);
      const count = view.getUint16(16);
      if (count === 0) return fail('bad-field', 'count 0');
      if (index >= count) return fail('bad-field', `index ${index} >= count ${count}`);
      if (length === DATA_HEADER_SIZE && count !== 1) return fail('bad-length', `empty payload in a batch of ${count}`);
      return {
        type,
        connectionId,
        seq: view.getUint32(6),
        batch: view.getUint32(10),
        index,
        count,
        payload: bytes.subarray(DATA_HEADER_SIZE),
      };
    }

    case PacketType.DataAck: {
      if (length < DATA_ACK_MIN_SIZE) return fail('bad-length', `DATA_ACK of ${length} bytes`);
      const cumulative = view.getUint32(6);
      const window = view.getUint16(10);
      const rangeCount = view.getUint8(12);
      if (length !== DATA_ACK_MIN_SIZE + RANGE_SIZE * rangeCount) {
        return fail('bad-length', `DATA_ACK of ${length} bytes with ${rangeCount} ranges`);
      }
      if (rangeCount > MAX_RANGES) return fail('bad-field', `rangeCount ${rangeCount}`);
      const ranges = readRanges(view, DATA_ACK_MIN_SIZE, rangeCount, cumulative);
      if (!Array.isArray(ranges)) return ranges;
      return { type, connectionId, cumulative, window, ranges };
    }

    case PacketType.Repeat: {
      if (length < REPEAT_MIN_SIZE) return fail('bad-length', `REPEAT of ${length} bytes`);
      const rangeCount = view.getUint8(6);
      if (length !== REPEAT_MIN_SIZE + RANGE_SIZE * rangeCount) {
        return fail('bad-length', `REPEAT of ${length} bytes with ${rangeCount} ranges`);
      }
      if (rangeCount === 0 || rangeCount > MAX_RANGES) return fail('bad-field', `rangeCount ${rangeCount}`);
      const ranges = readRanges(view, REPEAT_MIN_SIZE, rangeCount, undefined);
      if (!Array.isArray(ranges)) return ranges;
      return { type, connectionId, ranges };
    }

    case PacketType.Ping:
    case PacketType.PingAck:
      if (length !== PING_SIZE) return fail('bad-length', `${length} bytes for type ${type}`);
      return { type, connectionId, nonce: view.getUint32(6) };

    case PacketType.Close: {
      if (length > CLOSE_MAX_SIZE || length < CLOSE_MIN_SIZE) return fail('bad-length', `CLOSE of ${length} bytes`);
      let text: string;
      try {
        text = utf8.decode(bytes.subarray(CLOSE_MIN_SIZE));
      } catch {
        return fail('bad-text', 'CLOSE text is not valid UTF-8');
      }
      return { type, connectionId, reason: view.getUint8(6), text };
    }

    default: // PacketType.Direct, the only type left after the range check above
      return { type: PacketType.Direct, connectionId, payload: bytes.subarray(HEADER_SIZE) };
  }
}

/**
 * Reads `count` ranges and checks they are well formed: each `start` ≤ `end` in serial order,
 * and each `start` after the previous `end + 1` (no overlap, no touching). For DATA_ACK the
 * first `start` must be after `cumulative`, which is itself missing; REPEAT has no such bound.
 */
function readRanges(view: DataView, offset: number, count: number, cumulative: number | undefined): SeqRange[] | DecodeError {
  const ranges: SeqRange[] = [];
  let floor = cumulative; // the latest seq the next start must lie after
  for (let i = 0; i < count; i++, offset += RANGE_SIZE) {
    const start = view.getUint32(offset);
    const end = view.getUint32(offset + 4);
    if (seqDiff(end, start) >= 0x8000_0000) return fail('bad-ranges', `range ${i}: end ${end} before start ${start}`);
    if (floor !== undefined && !seqAfter(start, floor)) {
      return fail('bad-ranges', `range ${i}: start ${start} not after ${floor}`);
    }
    ranges.push({ start, end });
    floor = seqAdd(end, 1);
  }
  return ranges;
}
