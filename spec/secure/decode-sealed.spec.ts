/**
 * What an endpoint takes from a SEALED datagram: the packet inside when it opens and is one a
 * connection takes; nothing (counted) when it does not open, or when an authentic peer seals what
 * is never sealed (CONNECT, CONNECT_ACK) or bytes that are no packet.
 */
import { randomBytes } from 'node:crypto';
import { decodeSealed, emptyEndpointStats } from '../../lib/core/endpoint';
import { SecureSession } from '../../lib/core/secure/session';
import { encode } from '../../lib/wire/codec';
import { PacketType } from '../../lib/wire/packet';

const keys = { send: randomBytes(32), receive: randomBytes(32), handshakeHash: Buffer.alloc(64) };
const peer = () => new SecureSession(keys);
const us = () => new SecureSession({ send: keys.receive, receive: keys.send, handshakeHash: keys.handshakeHash });

test('an authentic DATA comes out whole', () => {
  const stats = emptyEndpointStats();
  const data = { type: PacketType.Data, connectionId: 9, seq: 3, batch: 1, index: 0, count: 1, payload: Buffer.from('hi') } as const;
  expect(decodeSealed(us(), peer().sealPacket(data)!, 1200, stats)).toEqual(data);
  expect(stats).toMatchObject({ unauthenticatedDatagrams: 0, invalidDatagrams: 0 });
});

test('authentic, but a CONNECT_ACK or not a packet: dropped as invalid', () => {
  const stats = emptyEndpointStats();
  const sender = peer();
  const receiver = us();
  const ack = { type: PacketType.ConnectAck, connectionId: 9, maxDatagramSize: 1200, receiveWindow: 64, nonce: 1 } as const;
  expect(decodeSealed(receiver, sender.sealPacket(ack)!, 1200, stats)).toBeUndefined();
  const notAPacket = encode({ type: PacketType.Ping, connectionId: 9, nonce: 1 });
  notAPacket[1] = 0x7f; // a type no packet has
  expect(decodeSealed(receiver, sender.seal(notAPacket)!, 1200, stats)).toBeUndefined();
  expect(stats).toMatchObject({ unauthenticatedDatagrams: 0, invalidDatagrams: 2 });
});

test('not opening, or no session yet: dropped as unauthenticated', () => {
  const stats = emptyEndpointStats();
  const sealed = peer().sealPacket({ type: PacketType.Ping, connectionId: 9, nonce: 1 })!;
  const damaged = Buffer.from(sealed);
  damaged[damaged.length - 1] = damaged[damaged.length - 1]! ^ 1;
  expect(decodeSealed(us(), damaged, 1200, stats)).toBeUndefined();
  expect(decodeSealed(undefined, sealed, 1200, stats)).toBeUndefined();
  expect(stats).toMatchObject({ unauthenticatedDatagrams: 2, invalidDatagrams: 0 });
});
