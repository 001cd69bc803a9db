import { createCipheriv, createDecipheriv } from 'node:crypto';

/** ChaCha20-Poly1305 (RFC 8439) with a 16-byte tag. */
export const TAG_SIZE = 16;
export const KEY_SIZE = 32;
const ALGORITHM = 'chacha20-poly1305';

/** One implementation of the AEAD, writing into buffers the caller owns. */
export interface Aead {
  readonly name: string;
  /** Encrypts `message` into `out` and appends the tag: `out` is message.length + 16 bytes. */
  encrypt(out: Uint8Array, message: Uint8Array, ad: Uint8Array, nonce: Uint8Array, key: Uint8Array): void;
  /** Decrypts `sealed` (ciphertext, then tag) into `out` (sealed.length - 16 bytes); false when it does not authenticate. */
  decrypt(out: Uint8Array, sealed: Uint8Array, ad: Uint8Array, nonce: Uint8Array, key: Uint8Array): boolean;
}

/** node:crypto: always there; each call builds a cipher object (~5 µs a packet). */
export const nodeAead: Aead = {
  name: 'node:crypto',
  encrypt(out, message, ad, nonce, key) {
    const cipher = createCipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_SIZE });
    cipher.setAAD(ad, { plaintextLength: message.length });
    const body = cipher.update(message);
    cipher.final();
    out.set(body, 0);
    out.set(cipher.getAuthTag(), body.length);
  },
  decrypt(out, sealed, ad, nonce, key) {
    if (sealed.length < TAG_SIZE) return false;
    const end = sealed.length - TAG_SIZE;
    const decipher = createDecipheriv(ALGORITHM, key, nonce, { authTagLength: TAG_SIZE });
    decipher.setAAD(ad, { plaintextLength: end });
    decipher.setAuthTag(sealed.subarray(end));
    const body = decipher.update(sealed.subarray(0, end));
    try {
      decipher.final();
    } catch {
      return false;
    }
    out.set(body, 0);
    return true;
  },
};

interface Sodium {
  crypto_aead_chacha20poly1305_ietf_encrypt(c: Uint8Array, m: Uint8Array, ad: Uint8Array | null, nsec: null, npub: Uint8Array, k: Uint8Array): number;
  crypto_aead_chacha20poly1305_ietf_decrypt(m: Uint8Array, nsec: null, c: Uint8Array, ad: Uint8Array | null, npub: Uint8Array, k: Uint8Array): number;
}

/** libsodium through sodium-native (an optional dependency), when it loads: the same AEAD at about a third of the cost per packet. */
export function sodiumAead(): Aead | undefined {
  let sodium: Sodium;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    sodium = require('sodium-native') as Sodium;
  } catch {
    return undefined;
  }
  if (typeof sodium.crypto_aead_chacha20poly1305_ietf_encrypt !== 'function') return undefined;
  return {
    name: 'libsodium',
    encrypt(out, message, ad, nonce, key) {
      sodium.crypto_aead_chacha20poly1305_ietf_encrypt(out, message, ad, null, nonce, key);
    },
    decrypt(out, sealed, ad, nonce, key) {
      if (sealed.length < TAG_SIZE) return false;
      try {
        sodium.crypto_aead_chacha20poly1305_ietf_decrypt(out, null, sealed, ad, nonce, key);
        return true;
      } catch {
        return false; // libsodium's "could not verify data"
      }
    },
  };
}

/** The AEAD sessions use: libsodium if it loads, else node:crypto. Both give the same bytes. */
export const defaultAead: Aead = sodiumAead() ?? nodeAead;

/** The 12-byte nonce of a 64-bit counter, as Noise builds it: 4 zero bytes, then the counter little-endian. */
export function counterNonce(counter: number, into: Buffer = Buffer.alloc(12)): Buffer {
  into.writeUInt32LE(0, 0);
  into.writeUInt32LE(counter >>> 0, 4);
  into.writeUInt32LE(Math.floor(counter / 2 ** 32), 8);
  return into;
}

/** `plain` encrypted, then its tag: plain.length + 16 bytes. */
export function seal(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, plain: Uint8Array, aead: Aead = defaultAead): Buffer {
  const out = Buffer.allocUnsafe(plain.length + TAG_SIZE);
  aead.encrypt(out, plain, ad, nonce, key);
  return out;
}

/** The plaintext, or undefined when `sealed` does not authenticate under `key`, `nonce` and `ad`. */
export function open(key: Uint8Array, nonce: Uint8Array, ad: Uint8Array, sealed: Uint8Array, aead: Aead = defaultAead): Buffer | undefined {
  if (sealed.length < TAG_SIZE) return undefined;
  const out = Buffer.allocUnsafe(sealed.length - TAG_SIZE);
  return aead.decrypt(out, sealed, ad, nonce, key) ? out : undefined;
}
