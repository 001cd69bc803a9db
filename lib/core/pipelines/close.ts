import { CloseReason, type ClosePacket } from '../../wire/packet';
import { errorForClose } from '../close';
import { ConnectionTimeoutError, MessageTooLargeError, ProtocolError, type RudpError } from '../errors';

/**
 * Why a connection ends: every way, one type. `byPeer`: the peer's CLOSE. `notifyPeer`: we send
 * CLOSE (twice: it is never acknowledged, PROTOCOL.md §8). `error`: undefined for a normal close.
 */
export interface Ending {
  readonly reason: number;
  readonly text: string;
  readonly byPeer: boolean;
  readonly notifyPeer: boolean;
  readonly error: RudpError | undefined;
}

/** The peer's CLOSE: the connection ends at once, nothing is sent back. */
export function peerClosed(packet: ClosePacket): Ending {
  return { reason: packet.reason, text: packet.text, byPeer: true, notifyPeer: false, error: errorForClose(packet.reason, packet.text) };
}

/** We close, telling the peer why. */
export function localClose(reason: number, text: string, error: RudpError | undefined): Ending {
  return { reason, text, byPeer: false, notifyPeer: true, error };
}

/** The transport failed: nothing more can be sent, so the peer is not told. */
export function transportFailed(error: RudpError): Ending {
  return { reason: CloseReason.ShuttingDown, text: error.message, byPeer: false, notifyPeer: false, error };
}

/** A pipeline's typed error, as the close it causes: the reason says what happened (never 0). */
export function failureEnding(error: unknown): Ending {
  if (error instanceof ConnectionTimeoutError) return localClose(CloseReason.Timeout, 'no answer to pings', error);
  if (error instanceof MessageTooLargeError) return localClose(CloseReason.MessageTooLarge, error.message, error);
  if (error instanceof ProtocolError) return localClose(CloseReason.ProtocolError, error.message, error);
  const failure = error instanceof Error ? error : new Error(String(error));
  return localClose(CloseReason.ProtocolError, `internal error: ${failure.message}`, new ProtocolError(`internal error: ${failure.message}`));
}
