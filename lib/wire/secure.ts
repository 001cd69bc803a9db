/**
 * The wire layout of the secure extension (docs/protocol.md §13.1): its CONNECT offer and
 * CONNECT_ACK answer parameters, the SEALED packet that carries every packet after the handshake,
 * and the RETRY packet of the stateless address check. Pure layout; the cryptography is in
 * lib/core/secure.
 */
import { HEADER_SIZE, PROTOCOL_VERSION } from './packet';

export const SECURE_EXTENSION_ID = 0x0001;
export const SEALED_TYPE = 0x18;
export const RETRY_TYPE = 0x19;
/** CLOSE reason for a CONNECT whose handshake the listener could not complete (only ever sent to a starter that offered this extension). */
export const HANDSHAKE_FAILED_REASON = 16;

/** The handshake pattern byte of an offer: Noise NK (the starter knows the listener's key). */
export const PATTERN_NK = 1;
const EPHEMERAL = 32;
const TAG = 16;
/** Noise's first message: the starter's ephemeral key and the tag of an empty payload. */
export const HANDSHAKE_MESSAGE_1_SIZE = EPHEMERAL + TAG;
/** Noise's second message: the listener's ephemeral key, its 8-byte payload (the CONNECT_ACK's body, authenticated) and a tag. */
export const ACK_PAYLOAD_SIZE = 8;
export const HANDSHAKE_MESSAGE_2_SIZE = EPHEMERAL + ACK_PAYLOAD_SIZE + TAG;
export const TOKEN_SIZE = 20;
export const RETRY_SIZE = HEADER_SIZE + TOKEN_SIZE;

/** version, type, connectionId, then the 8-byte packet counter; all of it authenticated. */
export const SEALED_HEADER_SIZE = HEADER_SIZE + 8;
/** Bytes a sealed packet adds to the version-1 packet it carries: the counter, the packet's own type (inside), the tag. */
export const SEALED_OVERHEAD = 8 + 1 + TAG;

export interface SecureOffer {
  readonly pattern: number;
  readonly message: Uint8Array;
  /** From a RETRY: proof that the starter receives at its address. */
  readonly token?: Uint8Array;
}

export function encodeOffer(offer: SecureOffer): Buffer {
  return Buffer.concat([Buffer.from([offer.pattern]), offer.message, offer.token ?? Buffer.alloc(0)]);
}

/** The offer, or undefined when its length or pattern is not one this version defines (the CONNECT is then invalid). */
export function decodeOffer(params: Uint8Array): SecureOffer | undefined {
  if (params.length !== 1 + HANDSHAKE_MESSAGE_1_SIZE && params.length !== 1 + HANDSHAKE_MESSAGE_1_SIZE + TOKEN_SIZE) return undefined;
  if (params[0] !== PATTERN_NK) return undefined;
  const message = params.subarray(1, 1 + HANDSHAKE_MESSAGE_1_SIZE);
  return params.length === 1 + HANDSHAKE_MESSAGE_1_SIZE ? { pattern: PATTERN_NK, message } : { pattern: PATTERN_NK, message, token: params.subarray(1 + HANDSHAKE_MESSAGE_1_SIZE) };
}

export function encodeRetry(connectionId: number, token: Uint8Array): Buffer {
  const buf = Buffer.alloc(RETRY_SIZE);
  buf[0] = PROTOCOL_VERSION;
  buf[1] = RETRY_TYPE;
  buf.writeUInt32BE(connectionId >>> 0, 2);
  buf.set(token, HEADER_SIZE);
  return buf;
}

/** The token of a RETRY datagram, or undefined when it is not one. */
export function decodeRetry(bytes: Uint8Array): Uint8Array | undefined {
  if (bytes.length !== RETRY_SIZE || bytes[0] !== PROTOCOL_VERSION || bytes[1] !== RETRY_TYPE) return undefined;
  return bytes.subarray(HEADER_SIZE);
}

/** The datagram's type byte (0 when too short): sealed and retry packets are told apart before decoding. */
export function typeOf(bytes: Uint8Array): number {
  return bytes.length >= HEADER_SIZE && bytes[0] === PROTOCOL_VERSION ? bytes[1]! : 0;
}

export function connectionIdOf(bytes: Uint8Array): number {
  return ((bytes[2]! << 24) | (bytes[3]! << 16) | (bytes[4]! << 8) | bytes[5]!) >>> 0;
}
