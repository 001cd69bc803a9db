import { MAX_DATAGRAM_SIZE, MIN_DATAGRAM_SIZE } from '../../wire/packet';
import { PATH_MTU_EXTENSION_ID } from '../../wire/path-mtu';
import type { Extension, NegotiatedExtensions } from '../extensions';
import type { ResolvedProtocolOptions } from '../options';
import { probeCeiling } from './ceiling';

/** Both entries carry one u16: the largest datagram their sender accepts on the connection. */
function encodeLargest(size: number): Uint8Array {
  return Uint8Array.of(size >>> 8, size & 0xff);
}

/** The parameter's value, or undefined when malformed (wrong length, out of 576..65507). */
function readLargest(params: Uint8Array): number | undefined {
  if (params.length !== 2) return undefined;
  const value = (params[0]! << 8) | params[1]!;
  return value < MIN_DATAGRAM_SIZE || value > MAX_DATAGRAM_SIZE ? undefined : value;
}

/**
 * The §12 extension "path-mtu" (docs/protocol.md §13.3): each side accepts datagrams up to
 * `accept` bytes and may send DATA as large as the other accepts and its PROBEs showed the path carries.
 */
export function pathMtuExtension(accept: number = MAX_DATAGRAM_SIZE): Extension {
  return {
    id: PATH_MTU_EXTENSION_ID,
    offer: () => encodeLargest(accept),
    // A malformed offer is declined (the connection is plain version 1): nothing was promised yet.
    accept: (offer) => (readLargest(offer) === undefined ? undefined : encodeLargest(accept)),
  };
}

/**
 * What the peer accepts on a connection that negotiated path-mtu (the other side's parameter:
 * the answer for a starter, the offer for a listener), or undefined without the extension. A
 * malformed answer counts as the version-1 size: the extension then changes nothing for sending.
 */
export function peerLargestDatagram(extensions: NegotiatedExtensions, started: boolean): number | undefined {
  const entry = extensions.get(PATH_MTU_EXTENSION_ID);
  if (entry === undefined) return undefined;
  return readLargest(started ? entry.answer : entry.offer) ?? MIN_DATAGRAM_SIZE;
}

/** What an endpoint offers or accepts: path-mtu unless `pathMtu` is 'off'. */
export function pathMtuExtensions(options: ResolvedProtocolOptions): Extension[] {
  return options.pathMtu === 'off' ? [] : [pathMtuExtension()];
}

/** The longest datagram an endpoint reads before it knows which connection it is for: what a path-mtu connection may carry. */
export function endpointReceiveLimit(options: ResolvedProtocolOptions): number {
  return options.pathMtu === 'off' ? options.maxDatagramSize : Math.max(options.maxDatagramSize, MAX_DATAGRAM_SIZE);
}

/**
 * A new connection's path-mtu parameters (ConnectionCore's `pathMtu` and `largestDatagram`):
 * without the extension, the version-1 limit; with it, this side accepts up to 65507 bytes and
 * probes up to the smaller of the peer's limit and its own ceiling for `address`, less `overhead`
 * (what sealing adds to each packet).
 */
export function pathMtuParams(
  options: ResolvedProtocolOptions,
  extensions: NegotiatedExtensions,
  started: boolean,
  address: string,
  overhead: number,
): { readonly pathMtu?: { readonly ceiling: number; readonly overhead: number }; readonly largestDatagram: number } {
  const peer = peerLargestDatagram(extensions, started);
  if (peer === undefined) return { largestDatagram: options.maxDatagramSize };
  return { pathMtu: { ceiling: Math.min(peer, probeCeiling(options.pathMtu, address)) - overhead, overhead }, largestDatagram: endpointReceiveLimit(options) };
}
