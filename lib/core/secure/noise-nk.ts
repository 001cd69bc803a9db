import { createHash, createHmac, createPublicKey, type KeyObject } from 'node:crypto';
import { counterNonce, open, seal, KEY_SIZE, TAG_SIZE } from './aead';
import { dh, generateKeyPair, rawPublicKey, type KeyPair } from './keys';

/**
 * The Noise NK handshake (Noise Protocol Framework, rev. 34), Noise_NK_25519_ChaChaPoly_BLAKE2b:
 *   <- s
 *   ...
 *   -> e, es
 *   <- e, ee
 * The starter knows the listener's static key; each side's ephemeral key gives forward secrecy;
 * only the holder of the static private key can answer. Written out here (not a dependency) because
 * node:crypto has every primitive; spec/secure/noise-interop.spec.ts checks it against an
 * independent implementation.
 */
export const PROTOCOL_NAME = 'Noise_NK_25519_ChaChaPoly_BLAKE2b';
const HASH_SIZE = 64;
export const EPHEMERAL_SIZE = 32;

/** The keys a finished handshake gives: one per direction, and the handshake hash (channel binding). */
export interface SessionKeys {
  readonly send: Buffer;
  readonly receive: Buffer;
  readonly handshakeHash: Buffer;
}

const hash = (...parts: Uint8Array[]): Buffer => {
  const h = createHash('blake2b512');
  for (const p of parts) h.update(p);
  return h.digest();
};
const hmac = (key: Uint8Array, ...parts: Uint8Array[]): Buffer => {
  const h = createHmac('blake2b512', key);
  for (const p of parts) h.update(p);
  return h.digest();
};
/** Noise's HKDF: two outputs of HASH_SIZE bytes. */
function hkdf(chainingKey: Uint8Array, input: Uint8Array): [Buffer, Buffer] {
  const temp = hmac(chainingKey, input);
  const first = hmac(temp, Buffer.from([1]));
  return [first, hmac(temp, first, Buffer.from([2]))];
}

class SymmetricState {
  private chainingKey: Buffer;
  hash: Buffer;
  private key: Buffer | undefined;
  private nonce = 0;

  constructor(prologue: Uint8Array) {
    const name = Buffer.from(PROTOCOL_NAME);
    this.hash = name.length <= HASH_SIZE ? Buffer.concat([name, Buffer.alloc(HASH_SIZE - name.length)]) : hash(name);
    this.chainingKey = this.hash;
    this.mixHash(prologue);
  }

  mixHash(data: Uint8Array): void {
    this.hash = hash(this.hash, data);
  }

  mixKey(input: Uint8Array): void {
    const [chainingKey, key] = hkdf(this.chainingKey, input);
    this.chainingKey = chainingKey;
    this.key = key.subarray(0, KEY_SIZE);
    this.nonce = 0;
  }

  encryptAndHash(plain: Uint8Array): Buffer {
    const out = this.key === undefined ? Buffer.from(plain) : seal(this.key, counterNonce(this.nonce++), this.hash, plain);
    this.mixHash(out);
    return out;
  }

  decryptAndHash(sealed: Uint8Array): Buffer | undefined {
    const plain = this.key === undefined ? Buffer.from(sealed) : open(this.key, counterNonce(this.nonce++), this.hash, sealed);
    if (plain !== undefined) this.mixHash(sealed);
    return plain;
  }

  /** The two transport keys: the first for initiator → responder. */
  split(): [Buffer, Buffer] {
    const [first, second] = hkdf(this.chainingKey, Buffer.alloc(0));
    return [first.subarray(0, KEY_SIZE), second.subarray(0, KEY_SIZE)];
  }
}

/** The starter between its message and the listener's answer. */
export class NkInitiator {
  private readonly state: SymmetricState;
  private readonly ephemeral: KeyPair;
  /** -> e, es, payload: EPHEMERAL_SIZE + payload + 16 bytes. */
  readonly message: Buffer;

  constructor(serverPublicKey: Uint8Array, prologue: Uint8Array, payload: Uint8Array = Buffer.alloc(0), ephemeral: KeyPair = generateKeyPair()) {
    this.ephemeral = ephemeral;
    const s = (this.state = new SymmetricState(prologue));
    s.mixHash(serverPublicKey);
    s.mixHash(ephemeral.publicKey);
    const es = dh(ephemeral.privateKey, serverPublicKey);
    if (es === undefined) throw new RangeError('the server public key is a low-order point');
    s.mixKey(es);
    this.message = Buffer.concat([ephemeral.publicKey, s.encryptAndHash(payload)]);
  }

  /** <- e, ee, payload: the payload and the keys, or undefined when the answer does not authenticate. */
  finish(answer: Uint8Array): { payload: Buffer; keys: SessionKeys } | undefined {
    if (answer.length < EPHEMERAL_SIZE + TAG_SIZE) return undefined;
    const s = this.state;
    const re = answer.subarray(0, EPHEMERAL_SIZE);
    s.mixHash(re);
    const ee = dh(this.ephemeral.privateKey, re);
    if (ee === undefined) return undefined;
    s.mixKey(ee);
    const payload = s.decryptAndHash(answer.subarray(EPHEMERAL_SIZE));
    if (payload === undefined) return undefined;
    const [toResponder, toInitiator] = s.split();
    return { payload, keys: { send: toResponder, receive: toInitiator, handshakeHash: s.hash } };
  }
}

/** The listener's side: reads the starter's message; undefined when it was not made for this key. */
export function nkRespond(
  staticKey: KeyObject,
  prologue: Uint8Array,
  message: Uint8Array,
): { readonly payload: Buffer; answer(payload: Uint8Array, ephemeral?: KeyPair): { message: Buffer; keys: SessionKeys } } | undefined {
  if (message.length < EPHEMERAL_SIZE + TAG_SIZE) return undefined;
  const s = new SymmetricState(prologue);
  s.mixHash(rawPublicKey(createPublicKey(staticKey)));
  const re = message.subarray(0, EPHEMERAL_SIZE);
  s.mixHash(re);
  const es = dh(staticKey, re);
  if (es === undefined) return undefined;
  s.mixKey(es);
  const payload = s.decryptAndHash(message.subarray(EPHEMERAL_SIZE));
  if (payload === undefined) return undefined;
  return {
    payload,
    answer: (answerPayload, ephemeral = generateKeyPair()) => {
      s.mixHash(ephemeral.publicKey);
      const ee = dh(ephemeral.privateKey, re)!; // re was a valid point: es was not zero
      s.mixKey(ee);
      const sealed = s.encryptAndHash(answerPayload);
      const [toResponder, toInitiator] = s.split();
      return { message: Buffer.concat([ephemeral.publicKey, sealed]), keys: { send: toInitiator, receive: toResponder, handshakeHash: s.hash } };
    },
  };
}
