/**
 * The extension lists of PROTOCOL.md §12, inside CONNECT's padding (an offer) and after
 * CONNECT_ACK's body (an answer): the marker "RX", then entries of `id` (u16), `length` (u16) and
 * `length` bytes of parameters, ending at an `id` of 0 or at the end of the datagram.
 */
import type { DecodeError, ExtensionEntry } from './packet';

/** "RX": what a list starts with; zero padding is never an offer. */
export const EXTENSION_MARKER_0 = 0x52;
export const EXTENSION_MARKER_1 = 0x58;
export const EXTENSION_MARKER_SIZE = 2;
export const EXTENSION_ENTRY_HEADER_SIZE = 4;

/** Bytes of the marker and `entries`. */
export function extensionListLength(entries: readonly ExtensionEntry[]): number {
  let length = EXTENSION_MARKER_SIZE;
  for (const entry of entries) length += EXTENSION_ENTRY_HEADER_SIZE + entry.params.length;
  return length;
}

/** Writes the marker and `entries` at `offset` (the caller sized `buf` with extensionListLength). */
export function writeExtensionList(buf: Uint8Array, offset: number, entries: readonly ExtensionEntry[]): void {
  buf[offset++] = EXTENSION_MARKER_0;
  buf[offset++] = EXTENSION_MARKER_1;
  for (const { id, params } of entries) {
    buf[offset++] = id >>> 8;
    buf[offset++] = id & 0xff;
    buf[offset++] = params.length >>> 8;
    buf[offset++] = params.length & 0xff;
    buf.set(params, offset);
    offset += params.length;
  }
}

/** True when the bytes at `offset` start an extension list. */
export function hasExtensionMarker(bytes: Uint8Array, offset: number): boolean {
  return bytes.length >= offset + EXTENSION_MARKER_SIZE && bytes[offset] === EXTENSION_MARKER_0 && bytes[offset + 1] === EXTENSION_MARKER_1;
}

/**
 * The entries of the list whose marker is at `offset`, or why it does not parse: an entry
 * running past the datagram, or the same `id` twice. Parameters are views into `bytes`.
 * Fewer than 2 bytes left where an `id` would start end the list if they are zero padding.
 */
export function readExtensionList(bytes: Uint8Array, offset: number): ExtensionEntry[] | DecodeError {
  const entries: ExtensionEntry[] = [];
  const seen = new Set<number>();
  let at = offset + EXTENSION_MARKER_SIZE;
  while (at < bytes.length) {
    if (bytes.length - at < 2) {
      if (bytes[at] === 0) break;
      return { error: 'bad-extensions', detail: `a stray byte at ${at} where an extension id would start` };
    }
    const id = (bytes[at]! << 8) | bytes[at + 1]!;
    if (id === 0) break;
    if (bytes.length - at < EXTENSION_ENTRY_HEADER_SIZE) return { error: 'bad-extensions', detail: `extension ${id} has no length` };
    const length = (bytes[at + 2]! << 8) | bytes[at + 3]!;
    const start = at + EXTENSION_ENTRY_HEADER_SIZE;
    if (start + length > bytes.length) return { error: 'bad-extensions', detail: `extension ${id}: ${length} bytes run past the datagram` };
    if (seen.has(id)) return { error: 'bad-extensions', detail: `extension ${id} listed twice` };
    seen.add(id);
    entries.push({ id, params: bytes.subarray(start, start + length) });
    at = start + length;
  }
  return entries;
}
