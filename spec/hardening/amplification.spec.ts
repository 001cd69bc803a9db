/**
 * Hostile input, amplification (virtual network, virtual time): a listener must never answer a
 * datagram that does not belong to a live connection (junk, CONNECT, a refused CONNECT, a packet
 * for an unknown or a closed connection) with more bytes than that datagram (PROTOCOL.md §3: "a
 * listener therefore never answers with more bytes than it received"). Otherwise anyone can
 * spoof a victim's address and use the listener as a reflector.
 */
import { Observable, map } from 'rxjs';
import type { Datagram, SocketFactory } from '../../lib/core/transport';
import { decode, encode } from '../../lib/wire/codec';
import { CloseReason, isDecodeError, PacketType, type Packet } from '../../lib/wire/packet';
import { listen } from '../../lib/index';
import { LISTENER_HOST, LISTENER_PORT, connectPacket, junk, rawPeer, rng, validPacket, world, type World } from './helpers';

interface Answer {
  readonly bytes: number;
  readonly to: string;
  readonly packet: string;
  /** The datagram being processed when the answer was sent (undefined: sent from a timer). */
  readonly cause: { readonly bytes: number; readonly from: string; readonly label: string } | undefined;
}

/** Wraps a factory: every datagram the socket sends is recorded with the datagram that caused it. */
function instrumented(factory: SocketFactory, answers: Answer[], labelOf: (d: Datagram) => string): SocketFactory {
  let current: Datagram | undefined;
  return (options) =>
    factory(options).pipe(
      map((socket) => ({
        datagrams$: new Observable<Datagram>((subscriber) =>
          socket.datagrams$.subscribe({
            next: (d: Datagram) => {
              current = d;
              try {
                subscriber.next(d);
              } finally {
                current = undefined;
              }
            },
            error: (e: unknown) => subscriber.error(e),
            complete: () => subscriber.complete(),
          }),
        ),
        send: (data: Uint8Array, port: number, address: string, onError?: (error: Error) => void) => {
          const p = decode(data);
          answers.push({
            bytes: data.length,
            to: `${address}:${port}`,
            packet: isDecodeError(p) ? 'invalid' : `${p.type}`,
            cause: current === undefined ? undefined : { bytes: current.data.length, from: `${current.address}:${current.port}`, label: labelOf(current) },
          });
          socket.send(data, port, address, onError);
        },
        address: () => socket.address(),
      })),
    );
}

function setup(w: World, options: { maxConnections?: number; pingInterval?: number; pingPacketCount?: number; connectTimeout?: number } = {}) {
  const answers: Answer[] = [];
  const labels = new Map<Uint8Array, string>();
  const factory = instrumented(w.network.socketFactory(LISTENER_HOST), answers, (d) => labels.get(d.data) ?? 'unlabelled');
  w.keep(
    listen({ host: LISTENER_HOST, port: LISTENER_PORT, scheduler: w.scheduler, socketFactory: factory, ...options }).subscribe((c) =>
      void c.messages$.subscribe({ error: () => undefined }),
    ),
  );
  return { answers };
}

test('no answer to a datagram outside a live connection is larger than that datagram: junk, CONNECTs, refusals, id in use, closed connections', () => {
  const w = world();
  // A long pingInterval: the live connections stay up, the closed one lingers (5 × 60 s) for the whole test.
  const { answers } = setup(w, { maxConnections: 2, pingInterval: 60_000 });
  // Two live connections fill the table (each peer sends a PING after the handshake: not half-open).
  const a = rawPeer(w, '10.0.0.1');
  const d = rawPeer(w, '10.0.0.4');
  a.send(connectPacket(0x1111), LISTENER_PORT, LISTENER_HOST);
  d.send(connectPacket(0x4444), LISTENER_PORT, LISTENER_HOST);
  w.run(1);
  a.send({ type: PacketType.Ping, connectionId: 0x1111, nonce: 1 }, LISTENER_PORT, LISTENER_HOST);
  d.send({ type: PacketType.Ping, connectionId: 0x4444, nonce: 1 }, LISTENER_PORT, LISTENER_HOST);
  // d closes, b connects and closes (0x3333 lingers), d connects again: the table is full (a + d).
  w.run(1);
  const b = rawPeer(w, '10.0.0.3');
  d.send({ type: PacketType.Close, connectionId: 0x4444, reason: 0, text: '' }, LISTENER_PORT, LISTENER_HOST);
  w.run(1);
  b.send(connectPacket(0x3333), LISTENER_PORT, LISTENER_HOST);
  w.run(1);
  b.send({ type: PacketType.Close, connectionId: 0x3333, reason: 0, text: '' }, LISTENER_PORT, LISTENER_HOST);
  d.send(connectPacket(0x4445), LISTENER_PORT, LISTENER_HOST); // the table is full again: a + d
  w.run(1);
  d.send({ type: PacketType.Ping, connectionId: 0x4445, nonce: 1 }, LISTENER_PORT, LISTENER_HOST);
  w.run(1);
  answers.length = 0;

  // The attacker (any source) tries everything; `b` is the source of the closed connection 0x3333.
  const attacker = rawPeer(w, '10.0.0.66');
  const r = rng(11);
  const cases: { from: ReturnType<typeof rawPeer>; data: Buffer; label: string }[] = [];
  for (let i = 0; i < 3000; i++) {
    const j = junk(r, [0x1111, 0x3333, 0x4445]);
    cases.push({ from: attacker, data: j.data, label: `junk: ${j.label}` });
  }
  for (let length = 64; length <= 1200; length += 97) {
    cases.push({ from: attacker, data: connectPacket(r.int(1, 0xffffffff), 1, length), label: 'CONNECT, table full (refused)' });
    cases.push({ from: attacker, data: connectPacket(0x1111, 1, length), label: 'CONNECT, id in use' });
    cases.push({ from: b, data: connectPacket(0x3333, 1, length), label: 'CONNECT, id of a closed connection' });
  }
  // Every kind of packet for the closed connection, from its old peer, as small as each can be.
  // (The 6-byte DIRECT, the one packet shorter than a CLOSE, has its own test below.)
  for (const p of [
    { type: PacketType.Direct, connectionId: 0x3333, payload: Buffer.alloc(1) },
    { type: PacketType.Ping, connectionId: 0x3333, nonce: 1 },
    { type: PacketType.PingAck, connectionId: 0x3333, nonce: 1 },
    { type: PacketType.DataAck, connectionId: 0x3333, cumulative: 0, window: 0, ranges: [] },
    { type: PacketType.Repeat, connectionId: 0x3333, ranges: [{ start: 0, end: 0 }] },
    { type: PacketType.Data, connectionId: 0x3333, seq: 0, batch: 0, index: 0, count: 1, payload: Buffer.alloc(0) },
    { type: PacketType.ConnectAck, connectionId: 0x3333, maxDatagramSize: 1200, receiveWindow: 1, nonce: 1 },
  ] as Packet[]) {
    cases.push({ from: b, data: encode(p), label: `packet type ${p.type} (${encode(p).length} bytes) for a closed connection` });
  }
  for (let i = 0; i < 100; i++) {
    const data = encode(validPacket(r, 0x3333));
    if (data.length > 6) cases.push({ from: b, data, label: 'valid packet for a closed connection' });
  }

  // One datagram at a time, 1.1 s apart for the closed connection's (its CLOSE is rate-limited to once a second).
  const labelled = new Map<string, number>();
  const violations = new Set<string>();
  for (const c of cases) {
    const before = answers.length;
    c.from.send(c.data, LISTENER_PORT, LISTENER_HOST);
    w.run(c.from === b ? 1100 : 0);
    for (const answer of answers.slice(before)) {
      if (answer.cause === undefined) continue; // timers of the live connections (pings): not answers
      labelled.set(c.label, (labelled.get(c.label) ?? 0) + 1);
      if (answer.bytes > answer.cause.bytes) {
        violations.add(`${c.label}: a ${answer.cause.bytes}-byte datagram was answered with ${answer.bytes} bytes (packet type ${answer.packet})`);
      }
    }
  }
  expect([...violations]).toEqual([]);
  // The cases were answered (so the bound was tested), refusals included.
  expect(labelled.get('CONNECT, table full (refused)')).toBeGreaterThan(0);
  expect(labelled.get('CONNECT, id in use')).toBeGreaterThan(0);
  expect(labelled.get('CONNECT, id of a closed connection')).toBeGreaterThan(0);
  expect(labelled.get('valid packet for a closed connection')).toBeGreaterThan(0);
  w.close();
});

for (const options of [
  { label: 'default options', pingInterval: 1000, pingPacketCount: 5, connectTimeout: 5000 },
  { label: 'pingInterval 200 ms', pingInterval: 200, pingPacketCount: 5, connectTimeout: 5000 },
  { label: 'pingPacketCount 20', pingInterval: 200, pingPacketCount: 20, connectTimeout: 5000 },
]) {
  test(`a spoofed CONNECT (64 bytes) earns its claimed source at most 3 × 64 bytes in all (PROTOCOL.md §3), until the ping timeout ends it (${options.label})`, () => {
    const w = world();
    const { answers } = setup(w, options);
    const victim = rawPeer(w, '10.0.0.99');
    victim.send(connectPacket(0x7777), LISTENER_PORT, LISTENER_HOST);
    w.run(60_000);
    const toVictim = answers.filter((a) => a.to === `${victim.address}:${victim.port}`);
    const total = toVictim.reduce((sum, a) => sum + a.bytes, 0);
    const detail = toVictim.map((a) => `${a.packet === `${PacketType.ConnectAck}` ? 'CONNECT_ACK' : a.packet === `${PacketType.Ping}` ? 'PING' : a.packet === `${PacketType.Close}` ? 'CLOSE' : a.packet}(${a.bytes})`).join(' ');
    expect(total <= 3 * 64 ? 'at most 192 bytes' : `${total} bytes: ${detail}`).toBe('at most 192 bytes');
    expect(toVictim[0]).toMatchObject({ bytes: 14, packet: `${PacketType.ConnectAck}` });
    w.close();
  });
}

test('a refused CONNECT is answered with one CLOSE reason 5 no larger than the CONNECT, nothing more', () => {
  const w = world();
  const { answers } = setup(w, { maxConnections: 0 });
  const victim = rawPeer(w, '10.0.0.99');
  victim.send(connectPacket(0x7777), LISTENER_PORT, LISTENER_HOST);
  w.run(60_000);
  expect(victim.received).toEqual([{ type: PacketType.Close, connectionId: 0x7777, reason: CloseReason.TooManyConnections, text: 'too many connections' }]);
  expect(answers.map((a) => a.bytes)).toEqual([victim.receivedBytes[0]]);
  expect(victim.receivedBytes[0]).toBeLessThanOrEqual(64);
  w.close();
});

test('a 6-byte DIRECT for a recently closed connection is not answered with a 7-byte CLOSE', () => {
  const w = world();
  const { answers } = setup(w, { pingInterval: 60_000 });
  const b = rawPeer(w, '10.0.0.3');
  b.send(connectPacket(0x3333), LISTENER_PORT, LISTENER_HOST);
  w.run(1);
  b.send({ type: PacketType.Close, connectionId: 0x3333, reason: 0, text: '' }, LISTENER_PORT, LISTENER_HOST);
  w.run(2000);
  answers.length = 0;
  // Anyone who knows (or spoofs) the closed connection's address, port and id may send this.
  b.send({ type: PacketType.Direct, connectionId: 0x3333, payload: Buffer.alloc(0) }, LISTENER_PORT, LISTENER_HOST);
  w.run(1);
  expect(answers.map((a) => `${a.bytes} bytes in answer to ${a.cause?.bytes}`)).not.toContain('7 bytes in answer to 6');
  for (const a of answers) expect(a.bytes).toBeLessThanOrEqual(6);
  w.close();
});
