/**
 * Path-MTU probing end to end on the virtual network, in virtual time: how far DATA grows on
 * paths that carry more or less, with peers that do or do not take part, and that every
 * message still arrives whole.
 */
import { createHash } from 'node:crypto';
import { VirtualAction, VirtualTimeScheduler, type Subscription } from 'rxjs';
import type { Connection, ConnectionEvent } from '../../../lib/index';
import { VirtualNetwork, connect, listen, type WireDatagram } from '../../../lib/testing/index';
import type { ProtocolOptions } from '../../../lib/core/options';
import { encode } from '../../../lib/wire/codec';
import { PacketType, type Packet } from '../../../lib/wire/packet';
import type { DatagramSocket } from '../../../lib/core/transport';
import { ProbePacketType } from '../../../lib/wire/path-mtu';

const PORT = 7000;

interface WorldOptions {
  readonly starter?: ProtocolOptions;
  readonly listener?: ProtocolOptions;
  /** Starter and listener hosts. Default: two loopback addresses. */
  readonly hosts?: readonly [string, string];
  /** The path drops datagrams longer than this (silently, as a router that may not fragment). */
  readonly pathCarries?: number;
  /** The network's send limit: longer datagrams fail with EMSGSIZE. */
  readonly sendLimit?: number;
}

function world(o: WorldOptions = {}) {
  const [starterHost, listenerHost] = o.hosts ?? ['127.0.0.1', '127.0.0.2'];
  const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
  const carries = o.pathCarries ?? Infinity;
  const network = new VirtualNetwork({ scheduler, default: { delay: 5, drop: (d: WireDatagram) => d.data.length > carries }, ...(o.sendLimit === undefined ? {} : { maxDatagramSize: o.sendLimit }) });
  const wire: { from: string; type: number; size: number }[] = [];
  const subscriptions: Subscription[] = [network.traffic$.subscribe((e) => wire.push({ from: e.from.address, type: e.data[1]!, size: e.data.length }))];
  const received: Buffer[] = [];
  let server: Connection | undefined;
  subscriptions.push(
    listen(network, { host: listenerHost, port: PORT, ...o.listener }).subscribe((c) => {
      server = c;
      c.messages$.subscribe({ next: (m) => received.push(Buffer.from(m)), error: () => undefined });
    }),
  );
  let client: Connection | undefined;
  const events: ConnectionEvent[] = [];
  subscriptions.push(
    connect(network, { from: starterHost, host: listenerHost, port: PORT, ...o.starter }).subscribe({
      next: (c) => {
        client = c;
        c.events$.subscribe((e) => events.push(e));
      },
      error: () => undefined,
    }),
  );
  const run = (ms: number): void => {
    scheduler.schedule(() => undefined, ms);
    scheduler.maxFrames = scheduler.now() + ms;
    scheduler.flush();
  };
  run(50);
  const sizes = () => events.flatMap((e) => (e.type === 'datagram-size' ? [e.size] : []));
  const sent = (from: string, type: number) => wire.filter((d) => d.from === from && d.type === type).map((d) => d.size);
  return { network, client: client!, server: () => server!, received, run, sizes, sent, starterHost, listenerHost, close: () => subscriptions.reverse().forEach((s) => s.unsubscribe()) };
}

/** Compared whole by their hash: Jest's deep equality walks a megabyte byte by byte. */
const digest = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Deterministic bytes, different for each message. */
const message = (length: number, seed: number): Buffer => {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed * 7) & 0xff;
  return bytes;
};

describe('path-MTU probing (docs/protocol.md §13.3)', () => {
  it('on loopback, DATA grows to the largest datagram, and every message arrives whole', () => {
    const w = world();
    const messages = [message(1 << 20, 1), message(300_000, 2), message(1 << 20, 3)];
    for (const m of messages) w.client.send$.next(m);
    w.run(2000);
    expect(w.received.map(digest)).toEqual(messages.map(digest));
    expect(w.sizes()).toEqual([1472, 8972, 16384, 32768, 65507]);
    expect(w.client.stats.datagramSize).toBe(65507);
    expect(Math.max(...w.sent(w.starterHost, PacketType.Data))).toBe(65507);
    // One PROBE per size, each answered.
    expect(w.sent(w.starterHost, ProbePacketType.Probe)).toEqual([1472, 8972, 16384, 32768, 65507]);
    expect(w.sent(w.listenerHost, ProbePacketType.ProbeAck)).toEqual([12, 12, 12, 12, 12]);
    w.close();
  });

  it('stops below the first size the path drops, after three PROBEs of it', () => {
    const w = world({ pathCarries: 9000 });
    // The first message starts at the version-1 size before any PROBE is answered; the second gets the size found.
    const messages = [message(100_000, 4), message(200_000, 5)];
    for (const m of messages) w.client.send$.next(m);
    w.run(3000);
    expect(w.received.map(digest)).toEqual(messages.map(digest));
    expect(w.sizes()).toEqual([1472, 8972]);
    expect(w.sent(w.starterHost, ProbePacketType.Probe)).toEqual([1472, 8972, 16384, 16384, 16384]);
    expect(Math.max(...w.sent(w.starterHost, PacketType.Data))).toBe(8972);
    w.close();
  });

  it("elsewhere than loopback, 'auto' stops at Ethernet's 1472 bytes; a number goes on to it", () => {
    const hosts = ['10.0.0.1', '10.0.0.2'] as const;
    const auto = world({ hosts });
    auto.client.send$.next(message(200_000, 5));
    auto.run(2000);
    expect(auto.sizes()).toEqual([1472]);
    auto.close();
    const jumbo = world({ hosts, starter: { pathMtu: 8972 } });
    jumbo.client.send$.next(message(200_000, 6));
    jumbo.run(2000);
    expect(jumbo.sizes()).toEqual([1472, 8972]);
    expect(jumbo.received.map(digest)).toEqual([digest(message(200_000, 6))]);
    jumbo.close();
  });

  it('does not probe on a connection that only sends messages of one packet', () => {
    const w = world();
    // Many at once: larger packets would not carry them in fewer.
    for (let i = 0; i < 50; i++) w.client.send$.next(message(1182, i));
    w.run(2000);
    expect(w.received).toHaveLength(50);
    expect(w.sent(w.starterHost, ProbePacketType.Probe)).toEqual([]);
    w.close();
  });

  it("with a peer that declines the extension ('off'), DATA stays at the version-1 size and nothing is probed", () => {
    for (const side of ['starter', 'listener'] as const) {
      const w = world({ [side]: { pathMtu: 'off' } });
      const m = message(500_000, 7);
      w.client.send$.next(m);
      w.server().send$.next(m);
      w.run(2000);
      expect(w.received.map(digest)).toEqual([digest(m)]);
      expect(w.sizes()).toEqual([]);
      expect(Math.max(...w.sent(w.starterHost, PacketType.Data), ...w.sent(w.listenerHost, PacketType.Data))).toBe(1200);
      expect([...w.sent(w.starterHost, ProbePacketType.Probe), ...w.sent(w.listenerHost, ProbePacketType.Probe)]).toEqual([]);
      w.close();
    }
  });

  it('a socket that refuses a size (EMSGSIZE) ends the search there; the connection goes on', () => {
    const w = world({ sendLimit: 20_000 });
    const messages = [message(100_000, 8), message(200_000, 9)];
    let closed = false;
    w.client.closed$.subscribe(() => (closed = true));
    for (const m of messages) w.client.send$.next(m);
    w.run(2000);
    expect(w.received.map(digest)).toEqual(messages.map(digest));
    expect(closed).toBe(false);
    expect(w.client.stats.datagramSize).toBe(16384);
    expect(Math.max(...w.sent(w.starterHost, PacketType.Data))).toBe(16384);
    w.close();
  });

  it('without the extension, a datagram longer than maxDatagramSize is still dropped (PROTOCOL.md §1)', () => {
    const w = world();
    // A version-1 starter on a raw socket: CONNECT with no offer, then a DIRECT of 1201 bytes and one of 1200.
    let raw: DatagramSocket | undefined;
    w.network.socketFactory('127.0.0.9')({ type: 'udp4' }).subscribe((s) => (raw = s));
    const send = (packet: Packet): void => raw!.send(encode(packet), PORT, w.listenerHost);
    send({ type: PacketType.Connect, connectionId: 99, maxDatagramSize: 1200, receiveWindow: 64, nonce: 1 });
    w.run(50);
    const server = w.server();
    expect(server.remote.address).toBe('127.0.0.9');
    const direct: number[] = [];
    server.direct$.subscribe((d) => direct.push(d.length + 6));
    send({ type: PacketType.Direct, connectionId: 99, payload: Buffer.alloc(1201 - 6) });
    send({ type: PacketType.Direct, connectionId: 99, payload: Buffer.alloc(1200 - 6) });
    w.run(50);
    expect(direct).toEqual([1200]);
    expect(server.stats.droppedDatagrams).toBe(1);
    w.close();
  });
});

