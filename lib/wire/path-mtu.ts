/**
 * The packets of the "path-mtu" extension (docs/protocol.md §13.3, id 0x0003): PROBE, a padded
 * datagram of the size being tried, and PROBE_ACK, which says that size arrived. A sender that
 * got a PROBE_ACK may send DATA of that size.
 */
import { HEADER_SIZE, type DecodeError } from './packet';

export const PATH_MTU_EXTENSION_ID = 0x0003;

export const ProbePacketType = {
  Probe: 0x12,
  ProbeAck: 0x13,
} as const;

/** Header (6) + probe id (4): the smallest PROBE; the rest of a PROBE is zero padding. */
export const PROBE_MIN_SIZE = 10;
/** Header (6) + probe id (4) + size (2). */
export const PROBE_ACK_SIZE = 12;

export interface ProbePacket {
  readonly type: typeof ProbePacketType.Probe;
  readonly connectionId: number;
  readonly probeId: number;
  /** The whole packet's length in bytes (header and padding included): the size being tried. */
  readonly size: number;
}

export interface ProbeAckPacket {
  readonly type: typeof ProbePacketType.ProbeAck;
  readonly connectionId: number;
  /** The PROBE's id, echoed. */
  readonly probeId: number;
  /** The PROBE's length as it arrived. */
  readonly size: number;
}

export type PathMtuPacket = ProbePacket | ProbeAckPacket;

export function isProbePacketType(type: number): boolean {
  return type === ProbePacketType.Probe || type === ProbePacketType.ProbeAck;
}

export function probePacketLength(packet: PathMtuPacket): number {
  return packet.type === ProbePacketType.Probe ? packet.size : PROBE_ACK_SIZE;
}

/** Writes the body of `packet` into `buf` (sized by probePacketLength, header written by the caller). */
export function writeProbePacket(buf: Buffer, packet: PathMtuPacket): void {
  buf.writeUInt32BE(packet.probeId, HEADER_SIZE);
  if (packet.type === ProbePacketType.ProbeAck) buf.writeUInt16BE(packet.size, HEADER_SIZE + 4);
  // The padding's content is ignored: zeros, so that nothing of the buffer's past leaks.
  else buf.fill(0, PROBE_MIN_SIZE, packet.size);
}

/** PROBE or PROBE_ACK from `bytes` (type and connection id already checked), or why not. */
export function readProbePacket(type: number, connectionId: number, bytes: Uint8Array, view: DataView): PathMtuPacket | DecodeError {
  const length = bytes.length;
  if (type === ProbePacketType.Probe) {
    if (length < PROBE_MIN_SIZE) return { error: 'bad-length', detail: `${length} bytes for PROBE` };
    return { type: ProbePacketType.Probe, connectionId, probeId: view.getUint32(HEADER_SIZE), size: length };
  }
  if (length !== PROBE_ACK_SIZE) return { error: 'bad-length', detail: `${length} bytes for PROBE_ACK` };
  const probeId = view.getUint32(HEADER_SIZE);
  const size = view.getUint16(HEADER_SIZE + 4);
  if (size < PROBE_MIN_SIZE) return { error: 'bad-field', detail: `PROBE_ACK size ${size}` };
  return { type: ProbePacketType.ProbeAck, connectionId, probeId, size };
}
