import type { ConnectPacket, ExtensionEntry } from '../../wire/packet';
import { CloseReason } from '../../wire/packet';
import { decodeOffer, encodeRetry, HANDSHAKE_FAILED_REASON, SECURE_EXTENSION_ID } from '../../wire/secure';
import type { KeyPair } from './keys';
import { nkRespond } from './noise-nk';
import { RetryTokens } from './retry-token';
import { SecureSession } from './session';

/** A listener's encryption settings (resolved from `listen({ secure })`). */
export interface SecureListenerConfig {
  readonly key: KeyPair;
  /** Refuse starters that do not offer encryption (default), or serve them in the clear. */
  readonly required: boolean;
  /** Stateless address check before any handshake work: always, never, or once `RETRY_AFTER_HALF_OPEN` connections are unproven. */
  readonly retry: 'auto' | 'always' | 'never';
  /** Test hook: packets per key. */
  readonly rekeyInterval?: number;
}

/**
 * 'auto' asks every new starter for a token once this many connections are half-open (nothing yet
 * from the starter's address), or this many handshakes (an X25519 each) were attempted in the
 * last second: then neither spoofed state nor spoofed work can pile up.
 */
export const RETRY_AFTER = 64;
/** A CONNECT offering encryption is at least this long, so that the CONNECT_ACK with its answer (76 bytes) never outgrows it. */
export const SECURE_CONNECT_MIN_SIZE = 128;

/** Handshakes attempted in the current second of the listener's clock (for 'auto' retry). */
export class HandshakeRate {
  private second = -1;
  count = 0;

  inSecond(now: number): number {
    const second = Math.floor(now / 1000);
    if (second !== this.second) {
      this.second = second;
      this.count = 0;
    }
    return this.count;
  }
}

export type SecureDecision =
  /** No offer, and plain starters are served. */
  | { readonly kind: 'plain' }
  /** Answer with CLOSE `reason`, `text`. */
  | { readonly kind: 'refuse'; readonly reason: number; readonly text: string }
  /** An invalid offer: dropped and counted, never answered (docs/protocol.md §12.2). */
  | { readonly kind: 'drop' }
  /** Answer with this RETRY and keep nothing. */
  | { readonly kind: 'retry'; readonly datagram: Buffer }
  /** A handshake that authenticated: `answer` gives the CONNECT_ACK's entry and the session. */
  | {
      readonly kind: 'secure';
      /** The starter brought a valid token: its address is proven. */
      readonly validated: boolean;
      answer(ackBody: Uint8Array): { readonly entry: ExtensionEntry; readonly session: SecureSession };
    };

/**
 * The listener's reading of a CONNECT under the secure extension (docs/protocol.md §13.1), cheapest
 * checks first: the offer's shape, then the token (an HMAC), and only then the handshake (X25519).
 */
export function readSecureConnect(
  config: SecureListenerConfig,
  tokens: RetryTokens,
  connect: ConnectPacket,
  bytes: Uint8Array,
  from: { readonly address: string; readonly port: number; readonly now: number; readonly halfOpen: number; readonly recentHandshakes: number },
): SecureDecision {
  const entry = connect.extensions?.find((e) => e.id === SECURE_EXTENSION_ID);
  if (entry === undefined) {
    if (!config.required) return { kind: 'plain' };
    return { kind: 'refuse', reason: CloseReason.TooManyConnections, text: 'encryption required: connect with the listener public key' };
  }
  const offer = decodeOffer(entry.params);
  if (offer === undefined || bytes.length < SECURE_CONNECT_MIN_SIZE) return { kind: 'drop' };
  const validated = offer.token !== undefined && tokens.valid(offer.token, from.address, from.port, connect.connectionId, from.now);
  const mustProve = config.retry === 'always' || (config.retry === 'auto' && (from.halfOpen >= RETRY_AFTER || from.recentHandshakes >= RETRY_AFTER));
  if (mustProve && !validated) return { kind: 'retry', datagram: encodeRetry(connect.connectionId, tokens.mint(from.address, from.port, connect.connectionId, from.now)) };
  const read = nkRespond(config.key.privateKey, bytes.subarray(0, 14), offer.message);
  if (read === undefined) return { kind: 'refuse', reason: HANDSHAKE_FAILED_REASON, text: 'handshake failed: not made for this listener key' };
  return {
    kind: 'secure',
    validated,
    answer: (ackBody) => {
      const { message, keys } = read.answer(ackBody);
      return { entry: { id: SECURE_EXTENSION_ID, params: message }, session: new SecureSession(keys, config.rekeyInterval) };
    },
  };
}
