/**
 * Hostile input, spoofing (virtual network, virtual time):
 * - packets carrying a live connection's id from another address or port are ignored, at both ends;
 * - an off-path sender that spoofs a peer's exact address and port, but does not know the 32-bit
 *   connection id, cannot inject data, close or reset the connection;
 * - neither can it break a handshake in progress.
 * Each time, a transfer runs both ways under the attack and must arrive intact.
 */
import { CloseReason } from '../../lib/index';
import { decode, encode } from '../../lib/wire/codec';
import { isDecodeError, PacketType, type Packet } from '../../lib/wire/packet';
import type { TrafficEvent } from '../../lib/testing/index';
import {
  LISTENER_HOST,
  LISTENER_PORT,
  STARTER_HOST,
  captureUnhandledErrors,
  connectPacket,
  digest,
  messages,
  rawPeer,
  rng,
  spoofable,
  virtualPair,
  world,
  type Pair,
} from './helpers';

let unhandled: ReturnType<typeof captureUnhandledErrors>;
beforeEach(() => (unhandled = captureUnhandledErrors()));
afterEach(() => unhandled.restore());

const toServer = messages(30, 1, 40_000);
const toClient = messages(30, 2, 40_000);

/** Everything a blind or misplaced attacker might try with connection id `id`. */
function attackPackets(id: number, round: number): Packet[] {
  const evil = Buffer.from(`evil ${round}`);
  const packets: Packet[] = [];
  for (let reason = 0; reason <= 5; reason++) packets.push({ type: PacketType.Close, connectionId: id, reason, text: '' });
  packets.push({ type: PacketType.Close, connectionId: id, reason: 200, text: 'reset' });
  // DATA at every seq a receiver could take next: a one-packet message each, and a huge one.
  for (let seq = 0; seq < 40; seq += 3) packets.push({ type: PacketType.Data, connectionId: id, seq, batch: seq, index: 0, count: 1, payload: evil });
  packets.push({ type: PacketType.Data, connectionId: id, seq: round % 40, batch: 0, index: 0, count: 65535, payload: evil });
  // Acks that would release unsent data (a violation), stall the sender (window 0), or ask for resends.
  packets.push({ type: PacketType.DataAck, connectionId: id, cumulative: 1_000_000, window: 1024, ranges: [] });
  packets.push({ type: PacketType.DataAck, connectionId: id, cumulative: 0, window: 0, ranges: [] });
  packets.push({ type: PacketType.Repeat, connectionId: id, ranges: [{ start: 0, end: 100 }] });
  packets.push({ type: PacketType.Ping, connectionId: id, nonce: round + 1 });
  packets.push({ type: PacketType.PingAck, connectionId: id, nonce: round + 1 });
  packets.push({ type: PacketType.Direct, connectionId: id, payload: evil });
  packets.push({ type: PacketType.ConnectAck, connectionId: id, maxDatagramSize: 576, receiveWindow: 1, nonce: round });
  return packets;
}

function expectIntact(pair: Pair): void {
  expect(pair.errors).toEqual([]);
  expect(pair.server.received).toEqual(toServer.map(digest));
  expect(pair.client.received).toEqual(toClient.map(digest));
  expect(pair.server.ended).toBeUndefined();
  expect(pair.client.ended).toBeUndefined();
  expect(pair.server.direct).toEqual([]);
  expect(pair.client.direct).toEqual([]);
  expect(pair.accepted).toHaveLength(1);
  expect(unhandled.errors).toEqual([]);
}

test("packets with a live connection's id from another port or another address are ignored at both ends", () => {
  const w = world({ seed: 3 });
  w.network.setLink(STARTER_HOST, LISTENER_HOST, { loss: 0.02, delay: 5, jitter: 2 });
  w.network.setLink(LISTENER_HOST, STARTER_HOST, { loss: 0.02, delay: 5, jitter: 2 });
  const pair = virtualPair(w, { toServer, toClient, connectHooks: { connectionId: 0x0badf00d } });
  w.run(20);
  expect(pair.server.conn?.id).toBe(0x0badf00d);
  const starterPort = pair.server.conn!.remote.port;

  // Misplaced: the starter's host on another port, the listener's host on another port, a third host.
  const attackers = [rawPeer(w, STARTER_HOST), rawPeer(w, LISTENER_HOST), rawPeer(w, '10.0.0.66')];
  const traffic: TrafficEvent[] = [];
  w.keep(w.network.traffic$.subscribe((e) => void traffic.push(e)));
  const isAttacker = (a: { address: string; port: number }): boolean => attackers.some((p) => p.address === a.address && p.port === a.port);
  for (let round = 0; round < 200; round++) {
    for (const attacker of attackers) {
      for (const p of attackPackets(0x0badf00d, round)) {
        attacker.send(p, LISTENER_PORT, LISTENER_HOST);
        attacker.send(p, starterPort, STARTER_HOST);
      }
      // A CONNECT with the live id from elsewhere: the listener says "id in use" to that source only.
      if (round % 50 === 0) attacker.send(connectPacket(0x0badf00d, round), LISTENER_PORT, LISTENER_HOST);
    }
    w.run(5);
  }
  w.run(20_000);

  expectIntact(pair);
  // Nothing went to the attackers but the listener's "id in use" answers to their CONNECTs.
  const replies = traffic.filter((e) => isAttacker(e.to)).map((e) => decode(e.data));
  expect(replies.length).toBeGreaterThan(0);
  for (const r of replies) expect(r).toEqual({ type: PacketType.Close, connectionId: 0x0badf00d, reason: CloseReason.ProtocolError, text: 'connection id in use' });
  // Every attack packet that reached the listener was counted as a stranger's; none reached the connection as a drop.
  const reachedListener = traffic.filter((e) => isAttacker(e.from) && e.to.port === LISTENER_PORT && e.to.address === LISTENER_HOST && e.fate !== 'lost');
  const nonConnect = reachedListener.filter((e) => (decode(e.data) as Packet).type !== PacketType.Connect).length;
  expect(pair.stats().strangerDatagrams).toBe(nonConnect);
  expect(pair.server.conn!.stats.droppedDatagrams).toBe(0);
  w.close();
});

test('an off-path sender spoofing the exact address and port of each peer, without the connection id, cannot inject, close or reset', () => {
  const w = world({ seed: 4 });
  w.network.setLink(STARTER_HOST, LISTENER_HOST, { loss: 0.02, delay: 5, jitter: 2 });
  w.network.setLink(LISTENER_HOST, STARTER_HOST, { loss: 0.02, delay: 5, jitter: 2 });
  const atListener = spoofable(w.network.socketFactory(LISTENER_HOST));
  const atStarter = spoofable(w.network.socketFactory(STARTER_HOST));
  const pair = virtualPair(w, { toServer, toClient, listenFactory: atListener.factory, connectFactory: atStarter.factory });
  w.run(20);
  const live = pair.server.conn!.id;
  const starter = atStarter.local();
  const traffic: TrafficEvent[] = [];
  w.keep(w.network.traffic$.subscribe((e) => void traffic.push(e)));

  // 20,000 guesses of the id, each with the whole arsenal, from the peers' own addresses and ports.
  const r = rng(99);
  let guesses = 0;
  for (let round = 0; round < 200; round++) {
    for (let k = 0; k < 100; k++) {
      let id = r.int(1, 0xffffffff);
      if (id === live) id ^= 1;
      guesses++;
      for (const p of attackPackets(id, round)) {
        const bytes = encode(p);
        atListener.inject(bytes, starter.address, starter.port);
        atStarter.inject(bytes, LISTENER_HOST, LISTENER_PORT);
      }
    }
    w.run(5);
  }
  w.run(20_000);

  expect(guesses).toBe(20_000);
  expectIntact(pair);
  // The endpoints answered none of it: everything on the wire belongs to the live connection.
  const foreign = traffic.map((e) => decode(e.data)).filter((p) => isDecodeError(p) || p.connectionId !== live);
  expect(foreign).toEqual([]);
  expect(pair.server.conn!.stats.droppedDatagrams).toBe(0);
  w.close();
});

test('a handshake survives spoofed refusals and acks: wrong id from the right source, right id from a wrong source', () => {
  const w = world({ seed: 5 });
  w.network.setLink(STARTER_HOST, LISTENER_HOST, { delay: 20 });
  w.network.setLink(LISTENER_HOST, STARTER_HOST, { delay: 20 });
  const atStarter = spoofable(w.network.socketFactory(STARTER_HOST));
  const id = 0x5eed5eed;
  const pair = virtualPair(w, { toServer, toClient, connectFactory: atStarter.factory, connectHooks: { connectionId: id } });
  const elsewhere = rawPeer(w, LISTENER_HOST);
  // Before the real CONNECT_ACK can arrive (40 ms round trip), the starter is told "refused" and
  // "accepted with other parameters" a thousand times over.
  const r = rng(5);
  for (let t = 0; t < 30; t++) {
    const starter = atStarter.local();
    for (let k = 0; k < 40; k++) {
      let guess = r.int(1, 0xffffffff);
      if (guess === id) guess ^= 1;
      for (const p of [
        { type: PacketType.Close, connectionId: guess, reason: CloseReason.TooManyConnections, text: '' },
        { type: PacketType.ConnectAck, connectionId: guess, maxDatagramSize: 576, receiveWindow: 1, nonce: r.int(0, 0xffffffff) },
      ] as Packet[]) {
        atStarter.inject(encode(p), LISTENER_HOST, LISTENER_PORT);
      }
    }
    elsewhere.send({ type: PacketType.Close, connectionId: id, reason: CloseReason.TooManyConnections, text: '' }, starter.port, STARTER_HOST);
    elsewhere.send({ type: PacketType.ConnectAck, connectionId: id, maxDatagramSize: 576, receiveWindow: 1, nonce: t }, starter.port, STARTER_HOST);
    w.run(1);
  }
  w.run(20_000);
  expectIntact(pair);
  expect(pair.client.conn!.id).toBe(id);
  // The listener's real parameters were taken, not the spoofed ones (1-packet window, 576-byte datagrams).
  expect(pair.client.conn!.maxDirectSize).toBe(1200 - 6);
  w.close();
});
