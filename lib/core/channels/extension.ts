import { CHANNELS_EXTENSION_ID } from '../../wire/channels';
import type { Extension, NegotiatedExtensions } from '../extensions';

/**
 * Highest channel id this implementation accepts: 256 channels (0..255). Receive state exists
 * only for channels the peer has used, and this bounds how many it can make us keep.
 */
export const MAX_CHANNEL = 255;

function encodeMaxChannel(maxChannel: number): Uint8Array {
  return Uint8Array.of(maxChannel >>> 8, maxChannel & 0xff);
}

/** The parameter both entries carry: the highest channel id their sender accepts; undefined when malformed. */
function readMaxChannel(params: Uint8Array): number | undefined {
  if (params.length !== 2) return undefined;
  const value = (params[0]! << 8) | params[1]!;
  return value === 0 ? undefined : value;
}

/** The §12 extension "channels" (docs/protocol.md §13.2): offered by a starter, accepted by a listener. */
export const channelsExtension: Extension = {
  id: CHANNELS_EXTENSION_ID,
  offer: () => encodeMaxChannel(MAX_CHANNEL),
  // A malformed offer is declined (the connection is plain version 1), not fatal: nothing was promised yet.
  accept: (offer) => (readMaxChannel(offer) === undefined ? undefined : encodeMaxChannel(MAX_CHANNEL)),
};

/**
 * The highest channel id both sides use on a connection, or undefined when it did not negotiate
 * channels. The same for both sides (the smaller of the two parameters), so neither needs to
 * know which of them started. A malformed answer leaves only channel 0.
 */
export function negotiatedMaxChannel(extensions: NegotiatedExtensions): number | undefined {
  const entry = extensions.get(CHANNELS_EXTENSION_ID);
  if (entry === undefined) return undefined;
  const offer = readMaxChannel(entry.offer);
  const answer = readMaxChannel(entry.answer);
  if (offer === undefined || answer === undefined) return 0;
  return Math.min(offer, answer);
}
