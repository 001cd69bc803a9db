/**
 * Splitting one user message into DATA payloads (PROTOCOL.md §4, example §11).
 */

import { DATA_HEADER_SIZE } from './packet';

/** `count` is a 16-bit field, so a batch holds at most this many packets. */
export const MAX_PACKETS_PER_MESSAGE = 0xffff;

function payloadSize(maxDatagramSize: number): number {
  if (!Number.isInteger(maxDatagramSize) || maxDatagramSize <= DATA_HEADER_SIZE) {
    throw new RangeError(`maxDatagramSize must be an integer above ${DATA_HEADER_SIZE}, got ${maxDatagramSize}`);
  }
  return maxDatagramSize - DATA_HEADER_SIZE;
}

/**
 * How many DATA packets a message of `length` bytes needs when datagrams are at most
 * `maxDatagramSize` bytes. An empty message still needs one packet.
 * Throws RangeError when `maxDatagramSize` leaves no room for payload.
 */
export function packetCount(length: number, maxDatagramSize: number): number {
  return Math.max(1, Math.ceil(length / payloadSize(maxDatagramSize)));
}

/**
 * The DATA payloads of `message`, in `index` order: every one but the last exactly
 * `maxDatagramSize - 18` bytes, the last the rest; an empty message gives one empty payload.
 * The payloads are views (`subarray`) sharing the message's memory, so the caller must not
 * mutate the message until they are all acknowledged.
 *
 * Throws RangeError when the message would need more than 65535 packets (the `count` field
 * could not describe it) or when `maxDatagramSize` leaves no room for payload.
 */
export function fragment(message: Uint8Array, maxDatagramSize: number): Uint8Array[] {
  const size = payloadSize(maxDatagramSize);
  const count = packetCount(message.length, maxDatagramSize);
  if (count > MAX_PACKETS_PER_MESSAGE) {
    throw new RangeError(
      `a ${message.length}-byte message needs ${count} packets at maxDatagramSize ${maxDatagramSize}; at most ${MAX_PACKETS_PER_MESSAGE} fit in one batch`,
    );
  }
  const payloads = new Array<Uint8Array>(count);
  for (let i = 0; i < count; i++) {
    payloads[i] = message.subarray(i * size, (i + 1) * size);
  }
  return payloads;
}
