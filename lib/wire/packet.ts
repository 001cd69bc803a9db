/**
 * The nine packets of PROTOCOL.md as plain values: a discriminated union on `type`.
 * Field names follow PROTOCOL.md; all integers are unsigned and already range-checked by `decode`.
 */

import type { ChannelPacket } from './channels';
import type { PathMtuPacket } from './path-mtu';

export const PROTOCOL_VERSION = 0x01;

export const PacketType = {
  Connect: 0x01,
  ConnectAck: 0x02,
  Data: 0x03,
  DataAck: 0x04,
  Repeat: 0x05,
  Ping: 0x06,
  PingAck: 0x07,
  Close: 0x08,
  Direct: 0x09,
} as const;
export type PacketType = (typeof PacketType)[keyof typeof PacketType];

/** CLOSE reasons (PROTOCOL.md §8). Any other byte value still closes, reported as a protocol error. */
export const CloseReason = {
  Normal: 0,
  Timeout: 1,
  ProtocolError: 2,
  MessageTooLarge: 3,
  ShuttingDown: 4,
  TooManyConnections: 5,
} as const;
export type CloseReason = (typeof CloseReason)[keyof typeof CloseReason];

export const HEADER_SIZE = 6;
export const CONNECT_MIN_SIZE = 64;
export const CONNECT_ACK_SIZE = 14;
export const DATA_HEADER_SIZE = 18;
export const PING_SIZE = 10;
export const MAX_RANGES = 32;
export const MAX_CLOSE_TEXT_BYTES = 123;
export const MIN_DATAGRAM_SIZE = 576;
export const MAX_DATAGRAM_SIZE = 65507;

/** An inclusive block of `seq` numbers; `start` ≤ `end` in serial order (may wrap past 2^32). */
export interface SeqRange {
  readonly start: number;
  readonly end: number;
}

interface Header {
  /** Non-zero, chosen by the starter, the same in every packet of the connection. */
  readonly connectionId: number;
}

/** One entry of a §12 extension offer or answer: an extension's id and its parameters. */
export interface ExtensionEntry {
  /** 1..65535 (0 ends a list). */
  readonly id: number;
  readonly params: Uint8Array;
}

export interface ConnectPacket extends Header {
  readonly type: typeof PacketType.Connect;
  readonly maxDatagramSize: number;
  readonly receiveWindow: number;
  readonly nonce: number;
  /** A §12 offer in the padding; absent when the padding holds none (a version-1 CONNECT). */
  readonly extensions?: readonly ExtensionEntry[];
  /** Pad the datagram to at least this many bytes (room for the listener's answer); never below 64. */
  readonly paddedSize?: number;
}

export interface ConnectAckPacket extends Header {
  readonly type: typeof PacketType.ConnectAck;
  readonly maxDatagramSize: number;
  readonly receiveWindow: number;
  readonly nonce: number;
  /** The §12 answer: the extensions accepted. Absent (or empty) for a plain 14-byte CONNECT_ACK. */
  readonly extensions?: readonly ExtensionEntry[];
}

export interface DataPacket extends Header {
  readonly type: typeof PacketType.Data;
  readonly seq: number;
  readonly batch: number;
  readonly index: number;
  readonly count: number;
  /** A view into the datagram (decode) or into the message (fragment); never copied by the codec on decode. */
  readonly payload: Uint8Array;
}

export interface DataAckPacket extends Header {
  readonly type: typeof PacketType.DataAck;
  readonly cumulative: number;
  readonly window: number;
  readonly ranges: readonly SeqRange[];
}

export interface RepeatPacket extends Header {
  readonly type: typeof PacketType.Repeat;
  readonly ranges: readonly SeqRange[];
}

export interface PingPacket extends Header {
  readonly type: typeof PacketType.Ping;
  readonly nonce: number;
}

export interface PingAckPacket extends Header {
  readonly type: typeof PacketType.PingAck;
  readonly nonce: number;
}

export interface ClosePacket extends Header {
  readonly type: typeof PacketType.Close;
  /** 0..255; values above 5 are legal on the wire and mean "protocol error" to the receiver. */
  readonly reason: number;
  readonly text: string;
}

export interface DirectPacket extends Header {
  readonly type: typeof PacketType.Direct;
  readonly payload: Uint8Array;
}

export type Packet =
  | ChannelPacket
  | PathMtuPacket
  | ConnectPacket
  | ConnectAckPacket
  | DataPacket
  | DataAckPacket
  | RepeatPacket
  | PingPacket
  | PingAckPacket
  | ClosePacket
  | DirectPacket;

/** Why a datagram is not a valid packet. `decode` returns this instead of throwing. */
export interface DecodeError {
  readonly error: DecodeErrorCode;
  readonly detail: string;
}

export type DecodeErrorCode =
  | 'too-short'
  | 'bad-version'
  | 'bad-type'
  | 'bad-length'
  | 'bad-connection-id'
  | 'bad-field'
  | 'bad-ranges'
  | 'bad-text'
  | 'bad-extensions';

export function isDecodeError(value: Packet | DecodeError): value is DecodeError {
  return (value as DecodeError).error !== undefined;
}
