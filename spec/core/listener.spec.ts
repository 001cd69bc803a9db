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

describe('listener: address validation (PROTOCOL.md §3)', () => {
  const byteCount = (packets: readonly Packet[]): number => packets.reduce((sum, p) => sum + encode(p).length, 0);

  it('pings a quiet starter that never greets, and keeps it alive while it answers', () => {
    const t = setup({ pingInterval: 400 });
    const peer = t.raw('10.0.0.1');
    peer.send(connectPacket(1, 1));
    t.run(10);
    // An honest version-1 starter with nothing to say: it only answers PINGs.
    let answered = 0;
    for (let step = 0; step < 40; step++) {
      t.run(100);
      for (const p of peer.received.splice(0)) {
        if (p.type === PacketType.Ping) {
          answered++;
          peer.send({ type: PacketType.PingAck, connectionId: 1, nonce: p.nonce });
        }
      }
    }
    t.run(1); // deliver the last PING_ACK
    expect(answered).toBeGreaterThanOrEqual(8); // one PING per idle pingInterval over 4 s
    expect(t.accepted[0]!.stats.packetsReceived).toBe(answered);
    expect(t.accepted).toHaveLength(1);
    let ended = false;
    t.accepted[0]!.closed$.subscribe(() => (ended = true));
    expect(ended).toBe(false);
    t.close();
  });

  it('a spoofed CONNECT earns its source at most 3 × its bytes, whatever the application and the timers do', () => {
    const t = setup({ pingInterval: 400 });
    const victim = t.raw('10.0.0.1');
    victim.send(connectPacket(1, 1));
    t.run(1);
    const connection = t.accepted[0]!;
    connection.send$.next(new Uint8Array(5000)); // the application answers at once with a large message
    connection.send$.next(new Uint8Array(20));
    expect(connection.sendDirect(new Uint8Array(100))).toBe(true); // fits: 106 bytes of 192 - 14
    t.run(150);
    victim.send(connectPacket(1, 1)); // the starter's CONNECT retry (the ack "was lost"): 64 more bytes of budget
    t.run(20_000);
    const sent = byteCount(victim.received);
    expect(sent).toBeGreaterThan(14 + 106); // it did answer, DIRECT and what else fitted
    expect(sent).toBeLessThanOrEqual(3 * 2 * 64);
    // The source never proved itself: the ping timeout ended the connection.
    let ended: unknown;
    connection.closed$.subscribe((info) => (ended = info.error?.name));
    expect(ended).toBe('ConnectionTimeoutError');
    t.close();
  });

  it('sends what it held once the starter proves its address', () => {
    const t = setup({ pingInterval: 10_000 });
    const peer = t.raw('10.0.0.1');
    peer.send(connectPacket(1, 1));
    t.run(1);
    t.accepted[0]!.send$.next(new Uint8Array(3000));
    t.run(50);
    expect(peer.received.filter((p) => p.type === PacketType.Data)).toHaveLength(0); // 1200-byte DATA does not fit in 192 - 14
    peer.send({ type: PacketType.DataAck, connectionId: 1, cumulative: 0, window: 64, ranges: [] }); // the greeting
    t.run(1);
    expect(peer.received.filter((p) => p.type === PacketType.Data).map((p) => (p as { seq: number }).seq)).toEqual([0, 1, 2]);
    t.close();
  });
});

describe('listener: acknowledgements and the linger table', () => {
  it('acknowledges a duplicate DATA that arrives right after the DATA_ACK that covered it (PROTOCOL.md §5)', () => {
    const t = setup();
    const peer = t.raw('10.0.0.1');
    peer.send(connectPacket(1, 1));
    t.run(1);
    const data: Packet = { type: PacketType.Data, connectionId: 1, seq: 0, batch: 0, index: 0, count: 1, payload: Buffer.from('x') };
    const acks = () => peer.received.filter((p) => p.type === PacketType.DataAck).length;
    // Our timer fired on a sub-millisecond path: a copy arrives in the same millisecond as the ack that covered it.
    const copy = t.network.traffic$.subscribe((e) => {
      if ((decode(e.data) as Packet).type !== PacketType.DataAck) return;
      copy.unsubscribe();
      peer.send(data);
    });
    peer.send(data);
    t.run(1);
    expect(acks()).toBe(1);
    t.run(6); // the 5 ms bound
    expect(acks()).toBe(2);
    t.close();
  });

  it('sweeps a linger entry on time even after its id lingered before (re-added ids move to the end)', () => {
    const t = setup({ pingInterval: 1000 }); // linger 5 s
    const a = t.raw('10.0.0.1');
    const b = t.raw('10.0.0.3');
    const c = t.raw('10.0.0.4');
    const closePacket = (id: number): Packet => ({ type: PacketType.Close, connectionId: id, reason: 0, text: '' });
    a.send(connectPacket(1, 1));
    t.run(10);
    a.send(closePacket(1)); // id 1 lingers for a until ~5010
    t.run(10);
    b.send(connectPacket(1, 2)); // the same id from another address is a new connection
    t.run(10);
    c.send(connectPacket(2, 3));
    t.run(10);
    c.send(closePacket(2)); // id 2 lingers for c until ~5040
    t.run(2960);
    b.send(closePacket(1)); // id 1 lingers again, for b, until ~8000
    t.run(2100); // now ~5100: id 2's linger is over
    c.send(connectPacket(2, 4));
    t.run(10);
    expect(t.accepted.map((x) => x.id)).toEqual([1, 1, 2, 2]);
    t.close();
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
