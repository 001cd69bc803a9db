/**
 * §12 negotiation end to end on the virtual network, with a test-only extension: every pairing of
 * an offering or plain starter with an extension-aware or version-1 listener connects, and a
 * malformed offer or answer is dropped, never a crash.
 */
import { VirtualAction, VirtualTimeScheduler, type Subscription } from 'rxjs';
import type { ConnectionCore } from '../../lib/core/connection';
import { emptyEndpointStats } from '../../lib/core/endpoint';
import type { Extension } from '../../lib/core/extensions';
import { acceptConnections } from '../../lib/core/listener';
import { resolveProtocolOptions } from '../../lib/core/options';
import { openConnection } from '../../lib/core/starter';
import type { Datagram, DatagramSocket } from '../../lib/core/transport';
import { VirtualNetwork } from '../../lib/testing/index';
import { decode, encode } from '../../lib/wire/codec';
import { PacketType, type ConnectAckPacket, type ConnectPacket, type Packet } from '../../lib/wire/packet';

const LISTENER = '10.0.0.2';
const STARTER = '10.0.0.1';
const PORT = 5000;
/** From the range docs/protocol.md keeps for tests. */
const TEST_ID = 0xff01;

/** Offers its name; the listener answers with the offer reversed, or declines when told to. */
const testExtension = (accepts = true): Extension => ({
  id: TEST_ID,
  offer: () => Buffer.from('hello'),
  accept: (offer) => (accepts ? Buffer.from([...offer].reverse()) : undefined),
});

function world() {
  const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
  const network = new VirtualNetwork({ scheduler });
  const subscriptions: Subscription[] = [];
  // path-mtu off: these specs are about the mechanism, with the test extension alone.
  const options = resolveProtocolOptions({ connectTimeout: 2000, pathMtu: 'off' });
  const socket = (host: string, port = 0): DatagramSocket => {
    let s: DatagramSocket | undefined;
    subscriptions.push(network.socketFactory(host)({ type: 'udp4', port }).subscribe((x) => (s = x)));
    return s!;
  };
  const listener = (extensions: readonly Extension[]) => {
    const accepted: ConnectionCore[] = [];
    const stats = emptyEndpointStats();
    subscriptions.push(acceptConnections(socket(LISTENER, PORT), { options, maxConnections: 10, maxMemory: Infinity, scheduler, stats, extensions }).subscribe((c) => accepted.push(c)));
    return { accepted, stats };
  };
  const starter = (extensions: readonly Extension[]) => {
    const outcome: { connection?: ConnectionCore; error?: unknown } = {};
    const stats = emptyEndpointStats();
    subscriptions.push(
      openConnection(socket(STARTER), { address: LISTENER, port: PORT, options, scheduler, stats, extensions }).subscribe({
        next: (c) => (outcome.connection = c),
        error: (e: unknown) => (outcome.error = e),
      }),
    );
    return { outcome, stats };
  };
  /** A raw socket: what it receives, decoded, and a way to send bytes. */
  const raw = (host: string, port = 0) => {
    const s = socket(host, port);
    const received: { packet: Packet; size: number; from: Datagram }[] = [];
    subscriptions.push(s.datagrams$.subscribe((d) => received.push({ packet: decode(d.data) as Packet, size: d.data.length, from: d })));
    return { socket: s, received, send: (bytes: Uint8Array, to = PORT, host2 = LISTENER) => s.send(bytes, to, host2) };
  };
  const run = (ms: number) => {
    scheduler.schedule(() => undefined, ms);
    scheduler.maxFrames = scheduler.now() + ms;
    scheduler.flush();
  };
  /** Both ends exchange one message each way. */
  const exchange = (a: ConnectionCore, b: ConnectionCore) => {
    const got: string[] = [];
    // (errors: the listener's teardown ends its connections with reason 4)
    a.messages$.subscribe({ next: (m) => got.push(`b→a ${Buffer.from(m).toString()}`), error: () => undefined });
    b.messages$.subscribe({ next: (m) => got.push(`a→b ${Buffer.from(m).toString()}`), error: () => undefined });
    a.send$.next(Buffer.from('ping'));
    b.send$.next(Buffer.from('pong'));
    run(100);
    return got.sort();
  };
  return { scheduler, listener, starter, raw, run, exchange, close: () => subscriptions.reverse().forEach((s) => s.unsubscribe()) }; // endpoints before their sockets
}

const params = (c: ConnectionCore) => [...c.extensions].map(([id, p]) => ({ id, offer: Buffer.from(p.offer).toString(), answer: Buffer.from(p.answer).toString() }));

describe('§12 negotiation', () => {
  it('an offering starter and a listener that knows the extension agree on it, and the connection works', () => {
    const w = world();
    const l = w.listener([testExtension()]);
    const s = w.starter([testExtension()]);
    w.run(10);
    const [server] = l.accepted;
    expect(params(s.outcome.connection!)).toEqual([{ id: TEST_ID, offer: 'hello', answer: 'olleh' }]);
    expect(params(server!)).toEqual([{ id: TEST_ID, offer: 'hello', answer: 'olleh' }]);
    expect(w.exchange(s.outcome.connection!, server!)).toEqual(['a→b ping', 'b→a pong']);
    w.close();
  });

  it('an offering starter and a listener without extensions (it ignores the padding): plain version 1', () => {
    const w = world();
    const l = w.listener([]);
    const s = w.starter([testExtension()]);
    w.run(10);
    expect(params(s.outcome.connection!)).toEqual([]);
    expect(w.exchange(s.outcome.connection!, l.accepted[0]!)).toEqual(['a→b ping', 'b→a pong']);
    w.close();
  });

  it('a listener that declines answers with a plain 14-byte CONNECT_ACK', () => {
    const w = world();
    const l = w.listener([testExtension(false)]);
    const peer = w.raw(STARTER);
    const connect: ConnectPacket = { type: PacketType.Connect, connectionId: 5, maxDatagramSize: 1200, receiveWindow: 64, nonce: 9, extensions: [{ id: TEST_ID, params: Buffer.from('hello') }] };
    peer.send(encode(connect));
    w.run(1);
    expect(peer.received.map((r) => [r.packet.type, r.size])).toEqual([[PacketType.ConnectAck, 14]]);
    expect(params(l.accepted[0]!)).toEqual([]);
    w.close();
  });

  it('a plain version-1 starter (zero padding) connects to an extension-aware listener and gets a 14-byte CONNECT_ACK', () => {
    const w = world();
    const l = w.listener([testExtension()]);
    const peer = w.raw(STARTER);
    peer.send(encode({ type: PacketType.Connect, connectionId: 5, maxDatagramSize: 1200, receiveWindow: 64, nonce: 9 }));
    peer.send(encode({ type: PacketType.Connect, connectionId: 5, maxDatagramSize: 1200, receiveWindow: 64, nonce: 10 })); // resent: same answer
    w.run(1);
    expect(peer.received.map((r) => [r.packet.type, r.size])).toEqual([
      [PacketType.ConnectAck, 14],
      [PacketType.ConnectAck, 14],
    ]);
    expect(params(l.accepted[0]!)).toEqual([]);
    w.close();
  });

  it('the answer is never larger than the CONNECT, and a resent CONNECT gets the same answer', () => {
    const w = world();
    const big: Extension = { id: TEST_ID, offer: () => Buffer.alloc(1), accept: () => Buffer.alloc(100) };
    const small: Extension = { id: 0xff02, offer: () => Buffer.alloc(1), accept: () => Buffer.from('ok') };
    w.listener([big, small]);
    const peer = w.raw(STARTER);
    const connect: ConnectPacket = {
      type: PacketType.Connect,
      connectionId: 5,
      maxDatagramSize: 1200,
      receiveWindow: 64,
      nonce: 9,
      extensions: [
        { id: TEST_ID, params: Buffer.alloc(1) },
        { id: 0xff02, params: Buffer.alloc(1) },
      ],
    };
    peer.send(encode(connect)); // 64 bytes: no room for 100 bytes of answer
    peer.send(encode({ ...connect, nonce: 10 }));
    w.run(1);
    const answers = peer.received.map((r) => r.packet as ConnectAckPacket);
    expect(peer.received.map((r) => r.size)).toEqual([22, 22]); // 14 + marker 2 + entry 4 + 2
    expect(answers.map((a) => a.extensions?.map((e) => [e.id, Buffer.from(e.params).toString()]))).toEqual([[[0xff02, 'ok']], [[0xff02, 'ok']]]);
    expect(answers.map((a) => a.nonce)).toEqual([9, 10]);
    w.close();
  });

  it('drops a malformed offer without answering it, and stays up', () => {
    const w = world();
    const l = w.listener([testExtension()]);
    const peer = w.raw(STARTER);
    const bytes = encode({ type: PacketType.Connect, connectionId: 5, maxDatagramSize: 1200, receiveWindow: 64, nonce: 9, extensions: [{ id: TEST_ID, params: Buffer.alloc(4) }] });
    bytes.writeUInt16BE(200, 18); // the entry's length now runs past the datagram
    peer.send(bytes);
    w.run(10);
    expect(peer.received).toEqual([]);
    expect(l.accepted).toEqual([]);
    expect(l.stats.invalidDatagrams).toBe(1);
    const s = w.starter([testExtension()]);
    w.run(10);
    expect(s.outcome.connection).toBeDefined();
    w.close();
  });

  it('a starter drops an answer that accepts what it did not offer, or a malformed one, and keeps trying', () => {
    const w = world();
    const fake = w.raw(LISTENER, PORT); // a listener that answers wrongly, then rightly
    const s = w.starter([testExtension()]);
    w.run(1);
    const connect = fake.received[0]!.packet as ConnectPacket;
    const reply = (ack: ConnectAckPacket, mangle?: (b: Buffer) => void) => {
      const bytes = encode(ack);
      mangle?.(bytes);
      fake.send(bytes, fake.received[0]!.from.port, STARTER);
      w.run(1);
    };
    const base: ConnectAckPacket = { type: PacketType.ConnectAck, connectionId: connect.connectionId, maxDatagramSize: 1200, receiveWindow: 64, nonce: connect.nonce };
    reply({ ...base, extensions: [{ id: 0xff02, params: Buffer.from('x') }] }); // not offered
    reply({ ...base, extensions: [{ id: TEST_ID, params: Buffer.from('x') }] }, (b) => b.writeUInt16BE(9, 18)); // length past the end
    expect(s.outcome).toEqual({});
    expect(s.stats.invalidDatagrams).toBe(2);
    reply({ ...base, extensions: [{ id: TEST_ID, params: Buffer.from('yes') }] });
    expect(params(s.outcome.connection!)).toEqual([{ id: TEST_ID, offer: 'hello', answer: 'yes' }]);
    w.close();
  });
});
