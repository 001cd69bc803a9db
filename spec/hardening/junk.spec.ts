/**
 * Hostile input, junk: while a real transfer runs between two peers on loopback, a third socket
 * sends 200,000 datagrams of random bytes and of mutated valid packets to the listener (and
 * 20,000 to the starter, whose socket is connected to its listener: the kernel must drop them all
 * before the library sees one). The transfer must complete intact, nothing may throw, and the
 * listener's drop counters must account for every junk datagram the kernel delivered, each
 * invalid or valid by how it was made (PROTOCOL.md §4), not by what the codec says.
 * Then the same malformed packets as if from the peer itself (virtual time): dropped and counted,
 * the connection unharmed; and a batch whose count changes: CLOSE reason 2 (PROTOCOL.md §4).
 */
import { createHash } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { lastValueFrom, map, type Subscription } from 'rxjs';
import { connect, listen, type Connection, type EndpointStats } from '../../lib/index';
import type { SocketFactory } from '../../lib/core/transport';
import { udpSocketFactory } from '../../lib/node/udp-socket';
import { HOST, Inbox, describeEnd, seededBytes, seededRandom, sha256, sleep, within } from '../integration/helpers';
import { encode } from '../../lib/wire/codec';
import { PacketType } from '../../lib/wire/packet';
import { LISTENER_HOST, captureUnhandledErrors, classify, digest, junk, messages, rng, spoofable, virtualPair, world, type Junk } from './helpers';

jest.setTimeout(120_000);

/**
 * The junk is made against the version-1 datagram limit (1200): on a connection that negotiated
 * path-mtu (docs/protocol.md §13.3) a peer may send up to 65507 bytes, and "longer than
 * maxDatagramSize" would be valid there. These endpoints keep the version-1 limit.
 */
const V1_LIMIT = { pathMtu: 'off' } as const;

const JUNK_TO_LISTENER = 200_000;
const JUNK_TO_STARTER = 20_000;

describe('the junk generator', () => {
  it('makes every datagram it calls invalid invalid to the codec, never a valid CONNECT, and covers every mutation', () => {
    const r = rng(42);
    const labels = new Map<string, number>();
    for (let i = 0; i < 50_000; i++) {
      const j: Junk = junk(r, [0x12345678]);
      labels.set(j.label, (labels.get(j.label) ?? 0) + 1);
      const c = classify(j.data);
      if (j.kind === 'invalid' && c !== 'invalid') throw new Error(`${j.label} decodes as a valid packet: ${j.data.toString('hex')}`);
      if (j.kind === 'valid' && c !== 'valid') throw new Error(`${j.label} does not decode: ${j.data.toString('hex')}`);
    }
    expect([...labels.keys()].sort()).toEqual(
      [
        'random bytes',
        'shorter than the header',
        'wrong version',
        'unknown type',
        'connection id 0',
        'fixed-length packet of the wrong length',
        'CONNECT under 64 bytes',
        'CONNECT(_ACK) field out of range',
        'DATA index >= count',
        'DATA count 0',
        'DATA empty payload, count > 1',
        'DATA shorter than its header',
        'DATA_ACK with too many ranges',
        'REPEAT with 0 or too many ranges',
        'rangeCount disagrees with length',
        'ranges out of order / overlapping / reversed',
        'CLOSE text too long',
        'CLOSE text not UTF-8',
        'CLOSE without reason',
        'longer than maxDatagramSize',
        'truncated packet',
        'bit flips',
        'DATA, count changing within a batch',
        'valid packet of a stranger',
      ].sort(),
    );
  });
});

/** Sizes log-uniform in 0..256 KiB. */
function messageSize(random: () => number): number {
  return Math.floor(2 ** (random() * 18)) - 1;
}

interface JunkCount {
  arrived: number;
  /** Of those arrived: invalid, or valid (from a stranger), as the sprayer made them. */
  invalid: number;
  valid: number;
  /** Arrived, but not one the sprayer made, or made as both kinds: must stay 0. */
  unknown: number;
}

/** Fingerprint of each datagram the junk socket sent → the kind it was made as ('both': made as each, a contradiction). */
type MadeAs = Map<string, 'invalid' | 'valid' | 'both'>;
const fingerprint = (data: Uint8Array): string => createHash('sha1').update(data).digest('hex');

/**
 * What the junk socket made: invalid or valid by construction, not by asking the codec (which is
 * under test). Random bytes are invalid when shorter than the header or of another version than
 * 1; truncations and bit flips of a valid packet may be either, so the spray leaves those out.
 */
function madeAs(j: Junk): 'invalid' | 'valid' | undefined {
  if (j.kind !== 'either') return j.kind;
  if (j.label === 'random bytes' && (j.data.length < 6 || j.data[0] !== 1)) return 'invalid';
  return undefined;
}

/** Wraps the real UDP factory so the test sees which datagrams come from the junk socket, and which kind each was made as. */
function tapped(junkPort: () => number, count: JunkCount, made: MadeAs): SocketFactory {
  return (options) =>
    udpSocketFactory(options).pipe(
      map((socket) => ({
        datagrams$: socket.datagrams$.pipe(
          map((d) => {
            if (d.port === junkPort()) {
              count.arrived++;
              const kind = made.get(fingerprint(d.data));
              if (kind === 'invalid') count.invalid++;
              else if (kind === 'valid') count.valid++;
              else count.unknown++;
            }
            return d;
          }),
        ),
        send: (data: Uint8Array, port: number, address: string, onError?: (error: Error) => void) => socket.send(data, port, address, onError),
        address: () => socket.address(),
      })),
    );
}

/**
 * Sends `total` junk datagrams to `port`, in bursts, letting the receiver keep up (the kernel's
 * receive buffer is finite: a junk flood faster than the receiver is lost in the kernel, which
 * would say nothing about the library).
 */
async function spray(socket: Socket, port: number, total: number, seed: number, liveIds: () => number[], made: MadeAs, arrived?: () => number): Promise<number> {
  const r = rng(seed);
  let sent = 0;
  let inFlight = 0;
  while (sent < total) {
    const burst = Math.min(200, total - sent);
    for (let i = 0; i < burst; ) {
      const j = junk(r, liveIds());
      const kind = madeAs(j);
      if (kind === undefined) continue;
      const key = fingerprint(j.data);
      const earlier = made.get(key);
      made.set(key, earlier === undefined || earlier === kind ? kind : 'both');
      inFlight++;
      i++;
      socket.send(j.data, port, HOST, () => void inFlight--);
    }
    sent += burst;
    const deadline = Date.now() + 200;
    while ((inFlight > 0 || (arrived !== undefined && arrived() < sent - 400)) && Date.now() < deadline) await new Promise((resolve) => setImmediate(resolve));
  }
  while (inFlight > 0) await new Promise((resolve) => setImmediate(resolve));
  return sent;
}

test(`${JUNK_TO_LISTENER.toLocaleString('en')} junk datagrams at the listener (and ${JUNK_TO_STARTER.toLocaleString('en')} at the starter, which its connected socket keeps out) during a transfer: intact, nothing throws, all counted`, async () => {
  const unhandled = captureUnhandledErrors();
  const subscriptions: Subscription[] = [];
  const junkSocket = createSocket('udp4');
  const junkReplies: string[] = [];
  junkSocket.on('message', (m, rinfo) => void junkReplies.push(`${rinfo.port}: ${m.toString('hex')}`));
  await new Promise<void>((resolve) => junkSocket.bind(0, HOST, resolve));
  const junkPort = junkSocket.address().port;
  try {
    const atListener: JunkCount = { arrived: 0, invalid: 0, valid: 0, unknown: 0 };
    const atStarter: JunkCount = { arrived: 0, invalid: 0, valid: 0, unknown: 0 };
    const made: MadeAs = new Map();
    let stats: EndpointStats | undefined;
    let port = 0;
    const accepted: { conn: Connection; inbox: Inbox }[] = [];
    subscriptions.push(
      listen({ ...V1_LIMIT, host: HOST, port: 0, socketFactory: tapped(() => junkPort, atListener, made), onListening: (a, s) => ((port = a.port), (stats = s)) }).subscribe((conn) =>
        accepted.push({ conn, inbox: new Inbox(conn, { keep: false }) }),
      ),
    );
    while (port === 0) await sleep(1);

    let client: Inbox | undefined;
    subscriptions.push(connect({ ...V1_LIMIT, host: HOST, port, socketFactory: tapped(() => junkPort, atStarter, made) }).subscribe((conn) => (client = new Inbox(conn, { keep: false }))));
    await within((async () => { while (client === undefined || accepted.length === 0) await sleep(2); })(), 5000, 'connecting');
    const server = accepted[0]!;
    const before = { ...stats! };
    const serverPacketsBefore = server.conn.stats.packetsReceived;

    // The transfer: each side sends random-size messages, each one acknowledged before the next,
    // for as long as the junk flows (and at least 30 each way).
    const hashes = { toServer: [] as string[], toClient: [] as string[], atServer: [] as string[], atClient: [] as string[] };
    server.conn.messages$.subscribe({ next: (m) => void hashes.atServer.push(sha256(m)), error: () => undefined });
    client!.conn.messages$.subscribe({ next: (m) => void hashes.atClient.push(sha256(m)), error: () => undefined });
    let junkDone = false;
    const pump = async (conn: Connection, seed: number, sent: string[]): Promise<void> => {
      const random = seededRandom(seed);
      for (let i = 0; !junkDone || i < 30; i++) {
        const m = seededBytes(seed, i, messageSize(random));
        sent.push(sha256(m));
        await within(lastValueFrom(conn.send(m), { defaultValue: undefined }), 20_000, `message ${i} acknowledged`);
      }
    };
    const transfer = Promise.all([pump(client!.conn, 1, hashes.toServer), pump(server.conn, 2, hashes.toClient)]);

    const startedAt = performance.now();
    const liveIds = (): number[] => [server.conn.id];
    const [toListener, toStarter] = await Promise.all([
      spray(junkSocket, port, JUNK_TO_LISTENER, 7, liveIds, made, () => atListener.arrived),
      spray(junkSocket, server.conn.remote.port, JUNK_TO_STARTER, 8, liveIds, made),
    ]);
    const junkMs = performance.now() - startedAt;
    // Let the last datagrams in the kernel's buffer arrive.
    await within((async () => { while (atListener.arrived < toListener && performance.now() - startedAt < junkMs + 1000) await sleep(10); })(), 5000, 'last junk');
    junkDone = true;
    await within(transfer, 60_000, 'the transfer');
    await sleep(50);

    // Intact: every message once, whole, in order, both ways; the connection still open.
    expect(hashes.atServer).toEqual(hashes.toServer);
    expect(hashes.atClient).toEqual(hashes.toClient);
    expect(server.inbox.ended).toBeUndefined();
    expect(client!.ended).toBeUndefined();
    // Nothing threw, nothing was answered, nothing was accepted.
    expect(unhandled.errors).toEqual([]);
    expect(junkReplies).toEqual([]);
    expect(accepted).toHaveLength(1);

    // The counters account for every junk datagram that reached the listener.
    const after = stats!;
    const counted = {
      invalid: after.invalidDatagrams - before.invalidDatagrams,
      stranger: after.strangerDatagrams - before.strangerDatagrams,
      routed: server.conn.stats.packetsReceived - serverPacketsBefore,
      received: after.datagramsReceived - before.datagramsReceived,
    };
    expect(toListener).toBe(JUNK_TO_LISTENER);
    expect(atListener.unknown).toBe(0);
    expect(atListener.invalid + atListener.valid).toBe(atListener.arrived);
    expect(atListener.invalid).toBeGreaterThan(0);
    expect(atListener.valid).toBeGreaterThan(0);
    expect(atListener.arrived).toBeGreaterThanOrEqual(0.98 * JUNK_TO_LISTENER);
    // The starter's socket is connected to its listener (lib/node/udp-socket.ts), so the kernel
    // drops every datagram from another source: not one of the junk reached the library.
    expect(toStarter).toBe(JUNK_TO_STARTER);
    expect(atStarter.arrived).toBe(0);
    expect(counted.invalid).toBe(atListener.invalid);
    expect(counted.stranger).toBe(atListener.valid);
    // Everything else the listener received was the real peer's, routed to its connection.
    expect(counted.received - counted.invalid - counted.stranger).toBe(counted.routed);
    expect(server.conn.stats.droppedDatagrams).toBe(0);

    client!.conn.close();
    await within(server.inbox.end, 5000, 'closing');
    expect(describeEnd(server.inbox.ended)).toBe('completed');
  } finally {
    unhandled.restore();
    for (const s of subscriptions.reverse()) s.unsubscribe();
    junkSocket.close();
  }
});

describe('malformed packets from the peer itself (its address, port and the live connection id), virtual time', () => {
  test('20,000 invalid datagrams are dropped and counted while a transfer runs intact; a batch whose count changes closes with reason 2', () => {
    const unhandled = captureUnhandledErrors();
    const w = world({ seed: 9 });
    w.network.setDefault({ loss: 0.02, delay: 3, jitter: 2 });
    const atListener = spoofable(w.network.socketFactory(LISTENER_HOST));
    const toServer = messages(30, 1, 40_000);
    const toClient = messages(30, 2, 40_000);
    const pair = virtualPair(w, { toServer, toClient, listenFactory: atListener.factory, protocol: V1_LIMIT });
    w.run(10);
    const live = pair.server.conn!.id;
    const peer = pair.server.conn!.remote;
    const before = { ...pair.stats() };
    const r = rng(17);
    let injected = 0;
    const labels = new Set<string>();
    for (let round = 0; round < 200; round++) {
      for (let k = 0; k < 100; ) {
        const j = junk(r, [live]);
        // Invalid by construction, not by asking the codec (which is under test too).
        if (madeAs(j) !== 'invalid') continue;
        atListener.inject(j.data, peer.address, peer.port);
        labels.add(j.label);
        injected++;
        k++;
      }
      w.run(5);
    }
    w.run(10_000);
    expect(injected).toBe(20_000);
    expect(labels.size).toBeGreaterThanOrEqual(20);
    expect(pair.server.received).toEqual(toServer.map(digest));
    expect(pair.client.received).toEqual(toClient.map(digest));
    expect(pair.server.ended).toBeUndefined();
    expect(pair.stats().invalidDatagrams - before.invalidDatagrams).toBe(injected);
    expect(pair.stats().strangerDatagrams - before.strangerDatagrams).toBe(0);

    // Now a valid-looking batch at exactly the next seq and batch, whose count changes: reason 2.
    const seq = pair.client.conn!.stats.dataPacketsSent; // the listener side expects this seq next (started at 0)
    const batch = toServer.length;
    const p = (index: number, count: number) => encode({ type: PacketType.Data, connectionId: live, seq: seq + index, batch, index, count, payload: Buffer.alloc(1182, index) });
    // (The listener side's DATA_ACK for it must not reach the real starter, which never sent it.)
    w.network.setLink(LISTENER_HOST, '10.0.0.1', { loss: 1 });
    atListener.inject(p(0, 3), peer.address, peer.port);
    w.run(100);
    expect(pair.server.ended).toBeUndefined(); // a valid start of a 3-packet batch
    w.network.setLink(LISTENER_HOST, '10.0.0.1', {});
    let reason: number | undefined;
    pair.server.conn!.closed$.subscribe((info) => (reason = info.reason));
    atListener.inject(p(1, 4), peer.address, peer.port);
    w.run(100);
    expect(reason).toBe(2);
    expect(pair.server.ended).toMatch(/^ProtocolError/);
    expect(pair.client.ended).toMatch(/^ProtocolError/); // told by CLOSE reason 2
    expect(unhandled.errors).toEqual([]);
    unhandled.restore();
    w.close();
  });
});
