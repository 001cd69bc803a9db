import { VirtualAction, VirtualTimeScheduler, type Subscription } from 'rxjs';
import { listen, type Connection, type EndpointStats } from '../../lib/index';
import type { Datagram, DatagramSocket } from '../../lib/core/transport';
import { decode, encode } from '../../lib/wire/codec';
import { PacketType, type Packet } from '../../lib/wire/packet';
import { VirtualNetwork } from '../../lib/testing/index';

const LISTENER = '10.0.0.2';
const PORT = 5000;

/** A listener on a virtual network, and raw sockets that speak packets to it. */
function setup(options: { maxConnections?: number; pingInterval?: number } = {}) {
  const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
  const network = new VirtualNetwork({ scheduler });
  const accepted: Connection[] = [];
  let stats: EndpointStats | undefined;
  const listener = listen({ host: LISTENER, port: PORT, scheduler, socketFactory: network.socketFactory(LISTENER), ...options, onListening: (_, s) => (stats = s) }).subscribe((c) => {
    accepted.push(c);
    c.messages$.subscribe({ error: () => undefined });
  });
  const subscriptions: Subscription[] = [listener];
  const raw = (host: string, port = 0) => {
    let socket: DatagramSocket | undefined;
    const received: Packet[] = [];
    subscriptions.push(network.socketFactory(host)({ type: 'udp4', port }).subscribe((s) => (socket = s)));
    subscriptions.push(socket!.datagrams$.subscribe((d: Datagram) => received.push(decode(d.data) as Packet)));
    return {
      send: (p: Packet, data: Uint8Array = encode(p)) => socket!.send(data, PORT, LISTENER),
      received,
      port: () => socket!.address().port,
    };
  };
  /** Advances virtual time by `ms` (a no-op action makes sure time moves even when nothing else is due). */
  const run = (ms: number) => {
    scheduler.schedule(() => undefined, ms);
    scheduler.maxFrames = scheduler.now() + ms;
    scheduler.flush();
  };
  return { scheduler, network, accepted, stats: () => stats!, raw, run, close: () => subscriptions.forEach((s) => s.unsubscribe()) };
}

const connectPacket = (connectionId: number, nonce: number): Packet => ({ type: PacketType.Connect, connectionId, maxDatagramSize: 1200, receiveWindow: 64, nonce });

describe('listener', () => {
  it('answers every CONNECT, a duplicate again with its own nonce, and creates one connection', () => {
    const t = setup();
    const peer = t.raw('10.0.0.1');
    peer.send(connectPacket(7, 100));
    peer.send(connectPacket(7, 101));
    t.run(10);
    expect(t.accepted).toHaveLength(1);
    expect(t.accepted[0]!.id).toBe(7);
    expect(t.accepted[0]!.remote).toEqual({ address: '10.0.0.1', port: peer.port() });
    expect(peer.received.map((p) => [p.type, (p as { nonce: number }).nonce])).toEqual([
      [PacketType.ConnectAck, 100],
      [PacketType.ConnectAck, 101],
    ]);
    expect(encode(peer.received[0]!).length).toBe(14); // never more bytes than the 64-byte CONNECT
    t.close();
  });

  it('drops and counts junk and strangers, without answering them', () => {
    const t = setup();
    const peer = t.raw('10.0.0.1');
    peer.send(connectPacket(7, 1));
    t.run(10);
    const stranger = t.raw('10.0.0.9');
    stranger.send({ type: PacketType.Ping, connectionId: 7, nonce: 1 }); // a live id, wrong address
    stranger.send({ type: PacketType.Ping, connectionId: 8, nonce: 1 }); // an unknown id
    stranger.send({ type: PacketType.Ping, connectionId: 7, nonce: 1 }, Buffer.from([1, 2, 3])); // junk
    stranger.send({ type: PacketType.Ping, connectionId: 7, nonce: 1 }, Buffer.alloc(1300)); // beyond maxDatagramSize
    t.run(10);
    expect(stranger.received).toEqual([]);
    expect(t.stats()).toMatchObject({ strangerDatagrams: 2, invalidDatagrams: 2 });
    expect(t.accepted[0]!.stats.packetsReceived).toBe(0);
    t.close();
  });

  it('refuses beyond maxConnections with CLOSE reason 5, and accepts again once one closed', () => {
    const t = setup({ maxConnections: 1 });
    const a = t.raw('10.0.0.1');
    const b = t.raw('10.0.0.3');
    a.send(connectPacket(1, 1));
    t.run(10);
    b.send(connectPacket(2, 2));
    t.run(10);
    expect(b.received).toEqual([{ type: PacketType.Close, connectionId: 2, reason: 5, text: 'too many connections' }]);
    expect(encode(b.received[0]!).length).toBeLessThanOrEqual(64);
    expect(t.stats().refusedConnections).toBe(1);
    t.accepted[0]!.close();
    b.send(connectPacket(2, 3));
    t.run(10);
    expect(t.accepted.map((c) => c.id)).toEqual([1, 2]);
    t.close();
  });

  it('answers packets for a recently closed connection with CLOSE, at most once a second, and forgets it after the linger', () => {
    const t = setup({ pingInterval: 1000 });
    const a = t.raw('10.0.0.1');
    a.send(connectPacket(1, 1));
    t.run(10);
    a.send({ type: PacketType.Close, connectionId: 1, reason: 0, text: '' });
    t.run(10);
    a.received.length = 0;
    a.send({ type: PacketType.Ping, connectionId: 1, nonce: 5 });
    a.send({ type: PacketType.Ping, connectionId: 1, nonce: 6 });
    t.run(10);
    expect(a.received.map((p) => p.type)).toEqual([PacketType.Close]);
    a.send(connectPacket(1, 9)); // the same id again within the linger: refused with CLOSE, not a new connection
    t.run(1500);
    a.send(connectPacket(1, 9));
    t.run(10);
    expect(a.received.map((p) => p.type)).toEqual([PacketType.Close, PacketType.Close]);
    expect(t.accepted).toHaveLength(1);
    t.run(6000); // linger = pingInterval × pingPacketCount = 5 s
    a.send(connectPacket(1, 10));
    t.run(10);
    expect(t.accepted).toHaveLength(2);
    t.close();
  });

  it('closes every connection with CLOSE reason 4 when unsubscribed', () => {
    const t = setup();
    const a = t.raw('10.0.0.1');
    a.send(connectPacket(1, 1));
    t.run(10);
    const sent: Packet[] = [];
    t.network.traffic$.subscribe((e) => sent.push(decode(e.data) as Packet));
    t.close();
    const close = { type: PacketType.Close, connectionId: 1, reason: 4, text: 'listener shutting down' };
    expect(sent).toEqual([close, close]);
  });
});

describe('listener: half-open connections', () => {
  it('expires a connection whose peer sends nothing after CONNECT_ACK within max(connectTimeout, 2 × pingInterval), silently, freeing its slot', () => {
    const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
    const network = new VirtualNetwork({ scheduler });
    const ended: string[] = [];
    const sub = listen({ host: LISTENER, port: PORT, scheduler, connectTimeout: 1000, pingInterval: 400, maxConnections: 1, socketFactory: network.socketFactory(LISTENER) }).subscribe((c) =>
      c.messages$.subscribe({ error: (e: Error) => ended.push(`${e.name} at ${scheduler.now()}`) }),
    );
    const sent: Packet[] = [];
    let raw: DatagramSocket | undefined;
    sub.add(network.socketFactory('10.0.0.1')({ type: 'udp4' }).subscribe((s) => (raw = s)));
    sub.add(raw!.datagrams$.subscribe((d) => sent.push(decode(d.data) as Packet)));
    raw!.send(encode(connectPacket(1, 1)), PORT, LISTENER);
    scheduler.schedule(() => raw!.send(encode(connectPacket(2, 2)), PORT, LISTENER), 500); // refused: the slot is taken
    scheduler.schedule(() => raw!.send(encode(connectPacket(3, 3)), PORT, LISTENER), 1500); // accepted: the half-open one expired
    scheduler.maxFrames = 1600;
    scheduler.flush();
    expect(ended).toEqual(['ConnectionTimeoutError at 1000']);
    expect(sent.map((p) => [p.type, p.connectionId])).toEqual([
      [PacketType.ConnectAck, 1],
      [PacketType.Close, 2],
      [PacketType.ConnectAck, 3],
    ]);
    sub.unsubscribe();
  });
});

describe('listener: unsubscribed from inside a close callback', () => {
  it('leaves no linger timer behind', () => {
    const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
    const network = new VirtualNetwork({ scheduler });
    let raw: DatagramSocket | undefined;
    const rawSub = network.socketFactory('10.0.0.1')({ type: 'udp4' }).subscribe((s) => (raw = s));
    const server: Subscription = listen({ host: LISTENER, port: PORT, scheduler, pingInterval: 10_000, socketFactory: network.socketFactory(LISTENER) }).subscribe((c) =>
      c.closed$.subscribe(() => server.unsubscribe()),
    );
    raw!.send(encode(connectPacket(1, 1)), PORT, LISTENER);
    scheduler.schedule(() => raw!.send(encode({ type: PacketType.Close, connectionId: 1, reason: 0, text: '' }), PORT, LISTENER), 10);
    scheduler.maxFrames = 100;
    scheduler.flush();
    rawSub.unsubscribe();
    expect(server.closed).toBe(true);
    expect(scheduler.actions).toHaveLength(0); // was: the 50 s linger sweep, re-armed after teardown
  });
});
