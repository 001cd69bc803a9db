/**
 * The two AEAD implementations (node:crypto, and libsodium when sodium-native loads) are the same
 * function: each opens what the other sealed, both refuse any change, and a session works on either.
 */
import { randomBytes } from 'node:crypto';
import { nodeAead, sodiumAead, TAG_SIZE, type Aead } from '../../lib/core/secure/aead';
import { SecureSession } from '../../lib/core/secure/session';
import { encode } from '../../lib/wire/codec';
import { PacketType } from '../../lib/wire/packet';

const sodium = sodiumAead();

test('sodium-native loads here (it is an optional dependency: CI must exercise both paths)', () => {
  expect(sodium?.name).toBe('libsodium');
});

const pairs: [Aead, Aead][] = [
  [nodeAead, sodium!],
  [sodium!, nodeAead],
  [nodeAead, nodeAead],
  [sodium!, sodium!],
];

test.each(pairs)('sealed by %s, opened by %s; any flipped bit is refused', (sealer, opener) => {
  const key = randomBytes(32);
  const nonce = randomBytes(12);
  const ad = randomBytes(14);
  for (const size of [0, 1, 100, 1183]) {
    const message = randomBytes(size);
    const sealed = Buffer.alloc(size + TAG_SIZE);
    sealer.encrypt(sealed, message, ad, nonce, key);
    const out = Buffer.alloc(size);
    expect(opener.decrypt(out, sealed, ad, nonce, key)).toBe(true);
    expect(out.equals(message)).toBe(true);
    for (const bit of [0, 7, 8 * sealed.length - 1]) {
      const flipped = Buffer.from(sealed);
      flipped[bit >> 3] = flipped[bit >> 3]! ^ (1 << (bit & 7));
      expect(opener.decrypt(Buffer.alloc(size), flipped, ad, nonce, key)).toBe(false);
    }
    const otherAd = Buffer.from(ad);
    otherAd[0] = otherAd[0]! ^ 1;
    expect(opener.decrypt(Buffer.alloc(size), sealed, otherAd, nonce, key)).toBe(false);
  }
});

test.each(pairs)('a session sealing with %s talks to one opening with %s', (a, b) => {
  const keys = { send: randomBytes(32), receive: randomBytes(32), handshakeHash: Buffer.alloc(64) };
  const sender = new SecureSession(keys, 4, a);
  const receiver = new SecureSession({ send: keys.receive, receive: keys.send, handshakeHash: keys.handshakeHash }, 4, b);
  for (let i = 0; i < 20; i++) {
    const packet = { type: PacketType.Direct, connectionId: 77, payload: Buffer.from(`message ${i}`) } as const;
    const opened = receiver.open(sender.seal(encode(packet))!);
    expect(opened?.equals(encode(packet))).toBe(true);
  }
});

test.each([nodeAead, sodium!])('sealing a packet in the buffer it is encoded into gives the bytes of sealing its encoding (%s)', (aead) => {
  const keys = { send: randomBytes(32), receive: randomBytes(32), handshakeHash: Buffer.alloc(64) };
  const inPlace = new SecureSession(keys, 4, aead);
  const copied = new SecureSession(keys, 4, aead);
  const packets = [
    { type: PacketType.Data, connectionId: 0x01020304, seq: 9, batch: 2, index: 0, count: 1, payload: randomBytes(1157) },
    { type: PacketType.DataAck, connectionId: 0xfffffffe, cumulative: 5, window: 64, ranges: [{ start: 7, end: 9 }] },
    { type: PacketType.Close, connectionId: 7, reason: 2, text: 'bye' },
    { type: PacketType.Direct, connectionId: 7, payload: Buffer.alloc(0) },
  ] as const;
  for (let round = 0; round < 3; round++) {
    for (const packet of packets) expect(inPlace.sealPacket(packet)!.toString('hex')).toBe(copied.seal(encode(packet))!.toString('hex'));
  }
});
