import { createCipheriv, createDecipheriv } from 'node:crypto';

/** ChaCha20-Poly1305 (RFC 8439) with a 16-byte tag, from node:crypto. */
export const TAG_SIZE = 16;
export const KEY_SIZE = 32;
const ALGORITHM = 'chacha20-poly1305';

/** The 12-byte nonce of a 64-bit counter, as Noise builds it: 4 zero bytes, then the counter little-endian. */
export function counterNonce(counter: number): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeUInt32LE(counter >>> 0, 4);
  nonce.writeUInt32LE(Math.floor(counter / 2 ** 32), 8);
  return nonce;
}

/** `plain` encrypted, then its tag: plain.length + 16 bytes. */
export function seal(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plain: Uint8Array): Buffer {
  const cipher = createCipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_SIZE });
  cipher.setAAD(ad, { plaintextLength: plain.length });
  const body = cipher.update(plain);
  cipher.final();
  return Buffer.concat([body, cipher.getAuthTag()]);
}

/** The plaintext, or undefined when `sealed` does not authenticate under `key`, `nonce` and `ad`. */
export function open(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array): Buffer | undefined {
  if (sealed.length < TAG_SIZE) return undefined;
  const decipher = createDecipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_SIZE });
  decipher.setAAD(ad, { plaintextLength: sealed.length - TAG_SIZE });
  decipher.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
  const plain = decipher.update(sealed.subarray(0, sealed.length - TAG_SIZE));
  try {
    decipher.final();
  } catch {
    return undefined;
  }
  return plain;
}
