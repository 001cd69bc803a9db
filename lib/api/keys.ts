import { generateKeyPair as generateX25519, rawPrivateKey } from '../core/secure/keys';

/**
 * A new X25519 key pair for `listen({ secure: { privateKey } })` and
 * `connect({ secure: { serverPublicKey } })`, each as base64 text (what `rx-rudp keygen` writes).
 * Keep the private key secret; give the public key to starters.
 */
export function generateKeyPair(): { privateKey: string; publicKey: string } {
  const pair = generateX25519();
  return { privateKey: rawPrivateKey(pair.privateKey).toString('base64'), publicKey: pair.publicKey.toString('base64') };
}
