import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, KeyObject } from 'node:crypto';
import { InvalidOptionError } from '../errors';

/** X25519 keys as raw 32-byte values; node:crypto wants them wrapped in DER. */
export const X25519_KEY_SIZE = 32;
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

export interface KeyPair {
  readonly privateKey: KeyObject;
  /** Raw 32 bytes. */
  readonly publicKey: Buffer;
}

export function generateKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  return { privateKey, publicKey: rawPublicKey(publicKey) };
}

export function rawPublicKey(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
}

export function rawPrivateKey(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'pkcs8' }).subarray(PKCS8_PREFIX.length);
}

/** A private key from a KeyObject, raw 32 bytes, or the base64 text `rx-rudp keygen` writes. */
export function privateKeyFrom(option: string, value: unknown): KeyPair {
  try {
    const key = value instanceof KeyObject ? value : createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, rawBytes(value)]), format: 'der', type: 'pkcs8' });
    if (key.type !== 'private' || key.asymmetricKeyType !== 'x25519') throw new Error('not an X25519 private key');
    return { privateKey: key, publicKey: rawPublicKey(createPublicKey(key)) };
  } catch {
    throw new InvalidOptionError(option, describe(value), 'an X25519 private key: a KeyObject, 32 raw bytes, or the base64 text of one (rx-rudp keygen writes one)');
  }
}

/** A public key from a KeyObject, raw 32 bytes, or base64 text (the line of a `.pub` file); raw 32 bytes out. */
export function publicKeyFrom(option: string, value: unknown): Buffer {
  try {
    if (value instanceof KeyObject) {
      if (value.asymmetricKeyType !== 'x25519') throw new Error('not X25519');
      return rawPublicKey(value.type === 'private' ? createPublicKey(value) : value);
    }
    const raw = rawBytes(value);
    publicKeyObject(raw); // checks it parses
    return raw;
  } catch {
    throw new InvalidOptionError(option, describe(value), "an X25519 public key: a KeyObject, 32 raw bytes, or the base64 text of one (the listener's .pub file)");
  }
}

export function publicKeyObject(raw: Uint8Array): KeyObject {
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** X25519; undefined for an all-zero result (a low-order point: the peer contributed nothing). */
export function dh(privateKey: KeyObject, publicKey: Uint8Array): Buffer | undefined {
  const shared = diffieHellman({ privateKey, publicKey: publicKeyObject(publicKey) });
  return shared.every((b) => b === 0) ? undefined : shared;
}

function rawBytes(value: unknown): Buffer {
  const bytes = typeof value === 'string' ? Buffer.from(value.trim(), 'base64') : value instanceof Uint8Array ? Buffer.from(value) : undefined;
  if (bytes === undefined || bytes.length !== X25519_KEY_SIZE) throw new Error('not 32 bytes');
  return bytes;
}

function describe(value: unknown): string {
  if (value instanceof Uint8Array) return `<${value.length} bytes>`;
  if (typeof value === 'string') return `<text of ${value.length} characters>`; // never echo key material
  return String(value);
}
