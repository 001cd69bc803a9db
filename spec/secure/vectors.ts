/** The inputs of docs/protocol.md §13.1.9's test vectors, and what our code makes of them. */
import { encode } from '../../lib/wire/codec';
import { PacketType } from '../../lib/wire/packet';
import { encodeOffer, PATTERN_NK } from '../../lib/wire/secure';
import { privateKeyFrom } from '../../lib/core/secure/keys';
import { NkInitiator, nkRespond } from '../../lib/core/secure/noise-nk';
import { REKEY_INTERVAL, SecureSession, rekey } from '../../lib/core/secure/session';
import { defaultAead, type Aead } from '../../lib/core/secure/aead';

export const INPUTS = {
  listenerStaticPrivate: '0101010101010101010101010101010101010101010101010101010101010101',
  starterEphemeralPrivate: '0202020202020202020202020202020202020202020202020202020202020202',
  listenerEphemeralPrivate: '0303030303030303030303030303030303030303030303030303030303030303',
} as const;

/** Every value the vectors list, as hex, computed from INPUTS. */
export function computeVectors(aead: Aead = defaultAead): Record<string, string> {
  const pair = (hex: string) => privateKeyFrom('vector', Buffer.from(hex, 'hex'));
  const listener = pair(INPUTS.listenerStaticPrivate);
  const connect = encode({ type: PacketType.Connect, connectionId: 0x0a0b0c0d, maxDatagramSize: 1200, receiveWindow: 1024, nonce: 0x11223344 });
  const prologue = connect.subarray(0, 14);
  const initiator = new NkInitiator(listener.publicKey, prologue, Buffer.alloc(0), pair(INPUTS.starterEphemeralPrivate));
  const ack = encode({ type: PacketType.ConnectAck, connectionId: 0x0a0b0c0d, maxDatagramSize: 1200, receiveWindow: 1024, nonce: 0x11223344 });
  const read = nkRespond(listener.privateKey, prologue, initiator.message)!;
  const answer = read.answer(ack.subarray(6, 14), pair(INPUTS.listenerEphemeralPrivate));
  const finished = initiator.finish(answer.message)!;
  const starter = new SecureSession(finished.keys, REKEY_INTERVAL, aead);
  // seal() uses its argument as scratch: a fresh encoding each time.
  const data = (): Buffer => encode({ type: PacketType.Data, connectionId: 0x0a0b0c0d, seq: 0, batch: 0, index: 0, count: 1, payload: Buffer.from('hello') });
  const first = starter.seal(data())!;
  // The first packet of the second key: skip the counter ahead.
  const later = new SecureSession(finished.keys, REKEY_INTERVAL, aead);
  (later as unknown as { sendCounter: number }).sendCounter = REKEY_INTERVAL;
  const rotated = later.seal(data())!;
  return {
    'listener static public key': listener.publicKey.toString('hex'),
    'prologue (CONNECT bytes 0..13)': prologue.toString('hex'),
    'offer params (pattern, message 1)': encodeOffer({ pattern: PATTERN_NK, message: initiator.message }).toString('hex'),
    'answer params (message 2)': answer.message.toString('hex'),
    'starter send key (k1)': finished.keys.send.toString('hex'),
    'starter receive key (k2)': finished.keys.receive.toString('hex'),
    'handshake hash': finished.keys.handshakeHash.toString('hex'),
    'k1 after one rekey': rekey(finished.keys.send).toString('hex'),
    'version-1 DATA inside': data().toString('hex'),
    'SEALED, counter 0': first.toString('hex'),
    'SEALED, counter 2^20 (second key)': rotated.toString('hex'),
  };
}
