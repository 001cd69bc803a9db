import { VirtualAction, VirtualTimeScheduler } from 'rxjs';
import { connect, ConnectionRefusedError, type Connection } from '../../lib/index';
import type { Datagram, DatagramSocket } from '../../lib/core/transport';
import { decode, encode } from '../../lib/wire/codec';
import { PacketType, type ConnectPacket, type Packet } from '../../lib/wire/packet';
import { VirtualNetwork } from '../../lib/testing/index';

const LISTENER = '10.0.0.2';
const PORT = 5000;

/** A raw listener that answers each CONNECT with `answer(connect, index)`, and the connect() outcome. */
function scenario(answer: (connect: ConnectPacket, index: number) => Packet) {
  const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
  const network = new VirtualNetwork({ scheduler });
  const connects: ConnectPacket[] = [];
  let socket: DatagramSocket | undefined;
  const rawSub = network.socketFactory(LISTENER)({ type: 'udp4', port: PORT }).subscribe((s) => (socket = s));
  rawSub.add(
    socket!.datagrams$.subscribe((d: Datagram) => {
      const packet = decode(d.data) as Packet;
      if (packet.type !== PacketType.Connect) return;
      connects.push(packet);
      socket!.send(encode(answer(packet, connects.length - 1)), d.port, d.address);
    }),
  );
  const outcome: { connection?: Connection; error?: unknown } = {};
  const sub = connect({ host: LISTENER, port: PORT, scheduler, connectTimeout: 2000, socketFactory: network.socketFactory('10.0.0.1') } as never).subscribe({
    next: (c) => (outcome.connection = c),
    error: (e: unknown) => (outcome.error = e),
  });
  scheduler.maxFrames = 3000;
  scheduler.flush();
  return { connects, outcome, done: () => (sub.unsubscribe(), rawSub.unsubscribe()) };
}

const closeFor = (c: ConnectPacket, reason: number): Packet => ({ type: PacketType.Close, connectionId: c.connectionId, reason, text: '' });
const ackFor = (c: ConnectPacket): Packet => ({ type: PacketType.ConnectAck, connectionId: c.connectionId, maxDatagramSize: 1200, receiveWindow: 64, nonce: c.nonce });

describe('starter: a CLOSE in answer to CONNECT (PROTOCOL.md §3)', () => {
  it('picks a new connection id and tries again when the id is refused (the listener still lingers on it)', () => {
    const t = scenario((c, i) => (i === 0 ? closeFor(c, 0) : ackFor(c)));
    expect(t.connects).toHaveLength(2);
    expect(t.connects[1]!.connectionId).not.toBe(t.connects[0]!.connectionId);
    expect(t.connects[1]!.nonce).not.toBe(t.connects[0]!.nonce);
    expect(t.outcome.error).toBeUndefined();
    expect(t.outcome.connection?.id).toBe(t.connects[1]!.connectionId);
    t.done();
  });

  it('fails with a typed error, never undefined, when the new id is refused too', () => {
    const t = scenario((c) => closeFor(c, 0));
    expect(t.connects).toHaveLength(2);
    expect(t.outcome.error).toBeInstanceOf(ConnectionRefusedError);
    expect((t.outcome.error as Error).message).toContain('10.0.0.2:5000');
    t.done();
  });

  it('does not retry when the listener is full (reason 5)', () => {
    const t = scenario((c) => closeFor(c, 5));
    expect(t.connects).toHaveLength(1);
    expect(t.outcome.error).toBeInstanceOf(ConnectionRefusedError);
    t.done();
  });
});
