import { CONNECT_ACK_SIZE, type ExtensionEntry } from '../wire/packet';
import { EXTENSION_ENTRY_HEADER_SIZE, EXTENSION_MARKER_SIZE } from '../wire/extensions';

/**
 * A protocol extension (PROTOCOL.md §12) as the handshake sees it. Later extensions (encryption,
 * channels, …) plug in here; the registry of ids and their rules is docs/protocol.md §13.
 */
export interface Extension {
  /** 1..65535, from docs/protocol.md's registry. */
  readonly id: number;
  /** Starter: the parameters offered in CONNECT. */
  offer(): Uint8Array;
  /** Listener: the parameters of its answer, accepting the starter's `offer`; undefined declines. */
  accept(offer: Uint8Array): Uint8Array | undefined;
}

/** What a connection negotiated: for each accepted extension id, the offer's and the answer's parameters. */
export type NegotiatedExtensions = ReadonlyMap<number, { readonly offer: Uint8Array; readonly answer: Uint8Array }>;

export const NO_EXTENSIONS: NegotiatedExtensions = new Map();

/** The starter's offer, or undefined (a version-1 CONNECT) when it supports no extension. */
export function makeOffer(extensions: readonly Extension[]): ExtensionEntry[] | undefined {
  if (extensions.length === 0) return undefined;
  return extensions.map((e) => ({ id: e.id, params: e.offer() }));
}

/**
 * The listener's answer to `offered`: each known extension that accepts, in offer order, while the
 * CONNECT_ACK stays no larger than the CONNECT of `connectSize` bytes (§12: no amplification).
 */
export function answerOffer(
  extensions: readonly Extension[],
  offered: readonly ExtensionEntry[] | undefined,
  connectSize: number,
): { readonly answer: ExtensionEntry[]; readonly negotiated: NegotiatedExtensions } {
  const answer: ExtensionEntry[] = [];
  const negotiated = new Map<number, { offer: Uint8Array; answer: Uint8Array }>();
  if (offered === undefined || extensions.length === 0) return { answer, negotiated: NO_EXTENSIONS };
  let size = CONNECT_ACK_SIZE + EXTENSION_MARKER_SIZE;
  for (const entry of offered) {
    const extension = extensions.find((e) => e.id === entry.id);
    const params = extension?.accept(entry.params);
    if (params === undefined) continue;
    if (size + EXTENSION_ENTRY_HEADER_SIZE + params.length > connectSize) continue; // does not fit: declined
    size += EXTENSION_ENTRY_HEADER_SIZE + params.length;
    answer.push({ id: entry.id, params });
    negotiated.set(entry.id, { offer: entry.params, answer: params });
  }
  return { answer, negotiated };
}

/**
 * The starter's reading of a CONNECT_ACK's answer to its `offered` list: what was negotiated, or
 * undefined when the answer is invalid (§12: it accepts an id not offered, or answers no offer).
 */
export function readAnswer(offered: readonly ExtensionEntry[] | undefined, answer: readonly ExtensionEntry[] | undefined): NegotiatedExtensions | undefined {
  if (answer === undefined || answer.length === 0) return NO_EXTENSIONS;
  if (offered === undefined) return undefined;
  const negotiated = new Map<number, { offer: Uint8Array; answer: Uint8Array }>();
  for (const entry of answer) {
    const offer = offered.find((o) => o.id === entry.id);
    if (offer === undefined) return undefined;
    negotiated.set(entry.id, { offer: offer.params, answer: entry.params });
  }
  return negotiated;
}
