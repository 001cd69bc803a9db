/**
 * Conformance of the listener (`rx-rudp echo`) to PROTOCOL.md, checked from outside: our raw
 * version-1 peer speaks bytes to the real CLI process over loopback, one MUST per test.
 * Small timers (pingInterval 250 ms, deliveryTimeout 100 ms) keep the suite short; time bounds
 * are generous for a loaded machine but still far from what a breach of the rule would show.
 */
import { Peer, now, sleep, type Received } from './peer';
import { handshake, newId, newNonce, startEcho, useConformance } from './harness';
import * as w from './wire';
import { expectBackOff } from './timing';

jest.setTimeout(15_000);
useConformance();

const PI = 250; // pingInterval
const PC = 2; // pingPacketCount
const DT = 100; // deliveryTimeout
const MAX_MESSAGE = 4000;
const WINDOW = 8;
const FLAGS = ['--ping-interval', String(PI), '--ping-packet-count', String(PC), '--delivery-timeout', String(DT), '--max-message-size', String(MAX_MESSAGE), '--receive-window', String(WINDOW)];
/** A reply "at once" on loopback takes well under a millisecond; this is the slack for a busy machine. */
const PROMPT = 100;

const bytes = (n: number, seed = 1): Buffer => {
  const next = w.prng(seed);
  return Buffer.from(Array.from({ length: n }, () => Math.floor(next() * 256)));
};
const isType = (type: number) => (p: w.Parsed) => p.type === type;
const dataOf = (r: Received) => r.packet as w.DataP;
/** Whether `ack` covers `seq`: before its cumulative, or inside a range (§5). */
const acked = (ack: w.DataAckP, seq: number): boolean => w.after(ack.cumulative, seq) || ack.ranges.some((r) => !w.after(r.start, seq) && !w.after(seq, r.end));

async function echoRoundTrip(conn: import('./peer').PeerConnection, text: string, ms = 2_000): Promise<void> {
  const before = conn.messages.length;
  conn.sendMessage(Buffer.from(text));
  const messages = await conn.messagesArrive(before + 1, ms);
  expect(messages[before]!.toString()).toBe(text);
}

describe('§3 handshake', () => {
  it('§3 a 64-byte zero-padded CONNECT is answered with a CONNECT_ACK of exactly 14 bytes, sent to its source, echoing id and nonce', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { ack, connect } = await handshake(peer, port);
    expect(ack.bytes.length).toBe(14);
    expect(ack.bytes[0]).toBe(0x01);
    expect(ack.packet.id).toBe(connect.readUInt32BE(2));
    expect((ack.packet as w.ConnectP).nonce).toBe(connect.readUInt32BE(10));
    expect(ack.port).toBe(port);
    expect(ack.packet.problem).toBeUndefined();
  });

  it('§3/§12 zero padding of any length is no offer, and non-marker padding is ignored: both get a plain 14-byte CONNECT_ACK', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const long = await handshake(peer, port, { connectSize: 300 });
    expect(long.ack.bytes.length).toBe(14);
    const id = newId();
    const n = newNonce();
    const from = peer.log.length;
    peer.send(w.connect(id, { nonce: n, padding: Buffer.alloc(50, 0xaa) }), port);
    const ack = await peer.next((r) => r.packet.id === id && r.packet.type === w.T.CONNECT_ACK, 2_000, 'CONNECT_ACK', from);
    expect(ack.bytes.length).toBe(14);
    expect((ack.packet as w.ConnectP).nonce).toBe(n);
  });

  it('§3 a repeated CONNECT for an open connection is answered again, echoing its nonce, and creates or changes nothing', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true });
    await echoRoundTrip(conn, 'first');
    const n = newNonce();
    const from = peer.log.length;
    conn.send(w.connect(conn.id, { nonce: n }));
    const again = await conn.next((p) => p.type === w.T.CONNECT_ACK, 2_000, 'second CONNECT_ACK', from);
    expect(again.bytes.length).toBe(14);
    expect((again.packet as w.ConnectP).nonce).toBe(n);
    // The same connection goes on: our seq 1 / batch 1 is the next message, and the echo is its seq 1 / batch 1.
    await echoRoundTrip(conn, 'second');
    const echoed = conn.packets(from).filter((r) => r.packet.type === w.T.DATA).map(dataOf);
    expect(echoed.map((p) => [p.seq, p.batch])).toContainEqual([1, 1]);
    expect(echoed.every((p) => p.seq !== 0)).toBe(true);
  });

  it('§1/§3 a CONNECT shorter than 64 bytes, or with maxDatagramSize or receiveWindow out of range, is dropped without reply and creates nothing', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const ids = [newId(), newId(), newId(), newId()];
    peer.send(w.connect(ids[0]!, { nonce: 1, size: 63 }), port);
    peer.send(w.connect(ids[1]!, { nonce: 2, maxDatagramSize: 575 }), port);
    peer.send(w.connect(ids[2]!, { nonce: 3, receiveWindow: 0 }), port);
    peer.send(w.connect(ids[3]!, { nonce: 4, size: 14 }), port);
    await sleep(200);
    // Nothing was created: DATA for those ids finds no connection (and no lingering one to answer).
    for (const id of ids) peer.send(w.data(id, 0, 0, 0, 1, Buffer.from('x')), port);
    const got = await peer.collect(400);
    expect(peer.log.map((r) => r.packet.type)).toEqual([]);
    expect(got).toEqual([]);
  });
});

describe('§3 address validation', () => {
  it('§3 a spoofed CONNECT (nothing ever follows it) earns its source at most 3× the bytes it sent, over the whole life of the connection', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { answerPings: false });
    await sleep(PI * (PC + 1) + 700);
    const received = peer.bytesReceivedFrom(port);
    expect(received).toBeLessThanOrEqual(3 * peer.bytesSent);
    expect(conn.packets().length).toBeGreaterThanOrEqual(1);
  });

  it('§3/§7 a quiet honest starter that never greets is PINGed after about one pingInterval of silence', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn, ack } = await handshake(peer, port);
    const ping = await conn.next(isType(w.T.PING), 2 * PI + 300, 'PING to a quiet starter');
    expect(ping.at - ack.at).toBeGreaterThanOrEqual(0.8 * PI);
    expect(ping.at - ack.at).toBeLessThanOrEqual(PI + 300);
  });

  it('§3/§7 a quiet honest starter (answers PINGs, nothing else) is kept alive: a message sent after 4 × pingInterval is echoed', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port);
    await sleep(4 * PI);
    await echoRoundTrip(conn, 'still there?');
    expect(conn.packets().filter((r) => r.packet.type === w.T.CLOSE)).toEqual([]);
  });

  it.each([
    ['never greets', false],
    ['greets with a DATA_ACK of its empty state', true],
  ])('§3 a starter that %s can exchange messages', async (_, greet) => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet });
    await echoRoundTrip(conn, 'one');
    await echoRoundTrip(conn, 'two');
    expect(conn.messages.map(String)).toEqual(['one', 'two']);
  });
});

describe('§4/§5 DATA and DATA_ACK', () => {
  it('§4/§5 each DATA is echoed as DATA and acknowledged within 5 ms (slack: 100 ms), with no further packet from us', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true, ackData: false });
    for (let i = 0; i < 5; i++) {
      const from = peer.log.length;
      const sentAt = now();
      conn.sendMessage(Buffer.from(`m${i}`));
      const ack = await conn.next((p) => p.type === w.T.DATA_ACK && acked(p, i), 1_000, `DATA_ACK of seq ${i}`, from);
      expect(ack.at - sentAt).toBeLessThanOrEqual(PROMPT);
      const echo = await conn.next((p) => p.type === w.T.DATA && p.batch === i, 1_000, `echo of message ${i}`, from);
      expect(dataOf(echo)).toMatchObject({ seq: i, batch: i, index: 0, count: 1 });
      expect(dataOf(echo).payload.toString()).toBe(`m${i}`);
      conn.ack(); // only now: the listener's ack above came without help from us
    }
  });

  it('§5 a duplicate DATA that arrives right after the DATA_ACK covering it is acknowledged again', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true });
    for (let i = 0; i < 5; i++) {
      const [packet] = conn.fragment(Buffer.from(`dup${i}`));
      let duplicateAt = 0;
      let duplicateIndex = 0;
      // Resend as a timer that fired just too early would: the moment the covering ack arrives.
      conn.onReceive = (r) => {
        if (duplicateAt === 0 && r.packet.type === w.T.DATA_ACK && acked(r.packet, i)) {
          conn.send(packet!);
          duplicateAt = now();
          duplicateIndex = peer.log.length;
        }
      };
      conn.send(packet!);
      await conn.next((p) => p.type === w.T.DATA_ACK && acked(p, i), 1_000, `first DATA_ACK of seq ${i}`);
      conn.onReceive = undefined;
      const second = await conn.next((p) => p.type === w.T.DATA_ACK && acked(p, i), PROMPT + 100, `a DATA_ACK for the duplicate of seq ${i}`, duplicateIndex);
      expect(second.at - duplicateAt).toBeLessThanOrEqual(PROMPT);
      await conn.messagesArrive(i + 1, 1_000);
    }
  });

  it('§5 out-of-order DATA: the DATA_ACK carries SACK ranges (inclusive, first start after cumulative); filling the gaps delivers in order', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true });
    const packets = [0, 1, 2, 3, 4, 5].map((i) => conn.fragment(Buffer.from(`m${i}`))[0]!);
    for (const i of [0, 2, 3, 5]) conn.send(packets[i]!);
    const sack = await conn.next((p) => p.type === w.T.DATA_ACK && p.cumulative === 1 && p.ranges.length === 2 && p.ranges[1]!.end === 5, 1_000, 'DATA_ACK 1 [2-3, 5-5]');
    expect((sack.packet as w.DataAckP).ranges).toEqual([
      { start: 2, end: 3 },
      { start: 5, end: 5 },
    ]);
    for (const i of [1, 4]) conn.send(packets[i]!);
    await conn.next((p) => p.type === w.T.DATA_ACK && p.cumulative === 6, 1_000, 'DATA_ACK 6');
    const messages = await conn.messagesArrive(6, 2_000);
    expect(messages.map(String)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
    // Every ack along the way was well formed (the afterEach check) and never claimed a packet we had not sent.
    for (const r of conn.packets().filter((x) => x.packet.type === w.T.DATA_ACK)) {
      const ack = r.packet as w.DataAckP;
      if (ack.cumulative > 6) throw new Error(`cumulative ${ack.cumulative} beyond what we sent`);
    }
  });

  it('§4/§5 DATA beyond the advertised receive window is not acknowledged as received (nor kept)', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn, ack } = await handshake(peer, port, { greet: true });
    expect((ack.packet as w.ConnectP).receiveWindow).toBe(WINDOW);
    const packets = Array.from({ length: WINDOW + 1 }, (_, i) => conn.fragment(Buffer.from(`m${i}`))[0]!);
    conn.send(packets[WINDOW]!); // seq 8: cumulative 0 + window 8 excludes it
    await sleep(200);
    for (const r of conn.packets().filter((x) => x.packet.type === w.T.DATA_ACK)) expect(acked(r.packet as w.DataAckP, WINDOW)).toBe(false);
    const from = peer.log.length;
    for (let i = 0; i < WINDOW; i++) conn.send(packets[i]!);
    await conn.messagesArrive(WINDOW, 2_000);
    await sleep(100);
    const acks = conn.packets(from).filter((x) => x.packet.type === w.T.DATA_ACK).map((x) => x.packet as w.DataAckP);
    expect(acks.every((a) => !acked(a, WINDOW))).toBe(true);
    expect(acks[acks.length - 1]).toMatchObject({ cumulative: WINDOW, ranges: [] });
    conn.send(packets[WINDOW]!);
    await conn.next((p) => p.type === w.T.DATA_ACK && p.cumulative === WINDOW + 1, 1_000, `DATA_ACK ${WINDOW + 1}`);
    expect((await conn.messagesArrive(WINDOW + 1, 2_000)).map(String)).toEqual(packets.map((_, i) => `m${i}`));
  });

  it('§4 a message of several DATA packets (sent in reverse) is reassembled and echoed whole, split as §4 says', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true });
    const message = bytes(3000, 7);
    const packets = conn.fragment(message);
    expect(packets.map((p) => p.length)).toEqual([1200, 1200, 18 + 3000 - 2 * 1182]);
    for (const p of [...packets].reverse()) conn.send(p);
    const [echoed] = await conn.messagesArrive(1, 2_000);
    expect(echoed!.equals(message)).toBe(true);
    const data = conn.packets().filter((r) => r.packet.type === w.T.DATA).map(dataOf);
    const first = new Map(data.map((p) => [p.index, p]));
    expect([...first.keys()].sort()).toEqual([0, 1, 2]);
    expect([0, 1, 2].map((i) => first.get(i)!.seq)).toEqual([0, 1, 2]);
    expect(data.every((p) => p.count === 3 && p.batch === 0)).toBe(true);
    expect([0, 1].map((i) => first.get(i)!.payload.length)).toEqual([1182, 1182]);
  });

  it('§4 packets of one batch disagreeing on count close the connection with reason 2', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true });
    conn.send(w.data(conn.id, 0, 0, 0, 2, bytes(1182)));
    conn.send(w.data(conn.id, 1, 0, 1, 3, bytes(100)));
    const close = await conn.next(isType(w.T.CLOSE), 1_000, 'CLOSE');
    expect((close.packet as w.CloseP).reason).toBe(2);
  });

  it('§4 a message larger than maxMessageSize closes the connection with reason 3', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true });
    conn.sendMessage(bytes(MAX_MESSAGE + 500));
    const close = await conn.next(isType(w.T.CLOSE), 1_000, 'CLOSE');
    expect((close.packet as w.CloseP).reason).toBe(3);
    expect(conn.messages).toEqual([]);
  });
});

describe('§5 retransmission and window', () => {
  it('§5 an echoed DATA we never acknowledge is resent: first after deliveryTimeout (no RTT sample yet), then with growing intervals', async () => {
    // Long pings, so that no PING_ACK gives the listener an RTT sample meanwhile.
    const { port } = await startEcho('--ping-interval', '3000', '--delivery-timeout', String(DT));
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true, ackData: false });
    const sentAt = now();
    conn.sendMessage(Buffer.from('never acked'));
    await sleep(1_700);
    const times = conn.packets().filter((r) => r.packet.type === w.T.DATA && dataOf(r).seq === 0).map((r) => r.at);
    expect(times.length).toBeGreaterThanOrEqual(4);
    expectBackOff(times, sentAt, DT);
  });

  it('§5 with an RTT sample, resends never come faster than the RTO floor (10 ms), and still back off', async () => {
    const { port } = await startEcho('--ping-interval', '3000', '--delivery-timeout', '400');
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true });
    await echoRoundTrip(conn, 'sample'); // acknowledged at once: a sub-millisecond sample
    conn.ackData = false;
    const sentAt = now();
    conn.sendMessage(Buffer.from('never acked'));
    await sleep(800);
    const times = conn.packets().filter((r) => r.packet.type === w.T.DATA && dataOf(r).seq === 1).map((r) => r.at);
    expect(times.length).toBeGreaterThanOrEqual(4);
    expect(times.length).toBeLessThanOrEqual(11); // a fixed 10 ms timer would resend ~80 times
    expectBackOff(times, sentAt, 10);
  });

  it('§5 the listener never has more DATA beyond our cumulative in flight than our window (2)', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true, receiveWindow: 2, ackData: false });
    let allowedBelow = 2; // cumulative + window of the latest DATA_ACK we sent
    const violations: string[] = [];
    conn.onReceive = (r) => {
      if (r.packet.type === w.T.DATA && r.packet.seq >= allowedBelow) violations.push(`seq ${r.packet.seq} while allowed below ${allowedBelow}`);
    };
    for (let i = 0; i < 5; i++) conn.sendMessage(Buffer.from(`m${i}`));
    await sleep(400);
    expect(conn.received).toEqual(new Set([0, 1]));
    allowedBelow = 4;
    conn.ack(); // cumulative 2, window 2
    await sleep(300);
    expect(conn.received).toEqual(new Set([0, 1, 2, 3]));
    allowedBelow = Infinity;
    conn.receiveWindow = 64;
    conn.ackData = true;
    conn.ack();
    expect((await conn.messagesArrive(5, 2_000)).map(String)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(violations).toEqual([]);
  });

  it('§5 window 0: only the packet at seq = cumulative goes out, as a probe at most once per RTO; opening the window lets the rest through', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { receiveWindow: 8, ackData: false });
    conn.receiveWindow = 0;
    conn.send(w.dataAck(conn.id, 0, 0)); // our greeting: cumulative 0, window 0
    await sleep(20);
    for (let i = 0; i < 3; i++) conn.sendMessage(Buffer.from(`m${i}`));
    const start = now();
    await sleep(600);
    const data = conn.packets().filter((r) => r.packet.type === w.T.DATA).map(dataOf);
    expect(data.map((p) => p.seq).filter((s) => s !== 0)).toEqual([]);
    expect(data.length).toBeGreaterThanOrEqual(1);
    expect(data.length).toBeLessThanOrEqual(Math.ceil((now() - start) / 10) + 2);
    conn.receiveWindow = 8;
    conn.ackData = true;
    conn.ack();
    expect((await conn.messagesArrive(3, 2_000)).map(String)).toEqual(['m0', 'm1', 'm2']);
  });
});

describe('§6 REPEAT', () => {
  it('§6 a REPEAT for a seq we have not acknowledged is resent at once (long before its timeout); one we acknowledged is ignored', async () => {
    const { port } = await startEcho('--ping-interval', '3000', '--delivery-timeout', '600');
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true, ackData: false });
    conn.sendMessage(Buffer.from('resend me'));
    const first = await conn.next((p) => p.type === w.T.DATA && p.seq === 0, 1_000, 'echo DATA seq 0');
    const from = peer.log.length;
    const askedAt = now();
    conn.send(w.repeat(conn.id, [{ start: 0, end: 0 }]));
    const resent = await conn.next((p) => p.type === w.T.DATA && p.seq === 0, 400, 'resend of seq 0 after REPEAT', from);
    expect(resent.at - askedAt).toBeLessThanOrEqual(PROMPT);
    expect(resent.at - first.at).toBeLessThan(600);
    conn.ack();
    await sleep(50);
    conn.send(w.repeat(conn.id, [{ start: 0, end: 0 }]));
    expect((await peer.collect(300)).filter((r) => r.packet.type === w.T.DATA)).toEqual([]);
  });

  it('§6 a gap in our DATA (seq 1 missing) makes the listener send REPEAT naming exactly seq 1, soon, and not again within deliveryTimeout / 2 without an RTT estimate', async () => {
    const dt = 200;
    const { port } = await startEcho('--ping-interval', '3000', '--delivery-timeout', String(dt));
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true, ackData: false });
    const packets = [0, 1, 2, 3, 4, 5].map((i) => conn.fragment(Buffer.from(`m${i}`))[0]!);
    const gapAt = now();
    for (const i of [0, 2, 3, 4, 5]) conn.send(packets[i]!);
    await sleep(600);
    const repeats = conn.packets().filter((r) => r.packet.type === w.T.REPEAT);
    expect(repeats.length).toBeGreaterThanOrEqual(1);
    expect(repeats[0]!.at - gapAt).toBeLessThanOrEqual(PROMPT);
    for (const r of repeats) expect((r.packet as w.RepeatP).ranges).toEqual([{ start: 1, end: 1 }]);
    // Not re-asked before deliveryTimeout / 2 (no RTT estimate yet). Counted, not spaced: a busy
    // test process reads queued datagrams back to back, which compresses measured spacing.
    const window = repeats.at(-1)!.at - gapAt;
    expect(repeats.length).toBeLessThanOrEqual(Math.floor(window / (dt / 2)) + 1);
    conn.send(packets[1]!);
    conn.ackData = true;
    expect((await conn.messagesArrive(6, 2_000)).map(String)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'm5']);
  });
});

describe('§7 PING', () => {
  it('§7 every PING is answered at once by a PING_ACK echoing its nonce', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true });
    for (const nonce of [1, 0xdeadbeef, 77]) {
      const from = peer.log.length;
      const sentAt = now();
      conn.send(w.ping(conn.id, nonce));
      const answer = await conn.next((p) => p.type === w.T.PING_ACK, 1_000, `PING_ACK ${nonce}`, from);
      expect((answer.packet as w.PingP).nonce).toBe(nonce);
      expect(answer.bytes.length).toBe(10);
      expect(answer.at - sentAt).toBeLessThanOrEqual(PROMPT);
    }
  });

  it('§7 an idle listener PINGs at 1× and 2× pingInterval after our last packet, and gives up at (pingPacketCount + 1) × pingInterval', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true, answerPings: false });
    const lastSent = now();
    await sleep((PC + 1) * PI + 400);
    const pings = conn.packets().filter((r) => r.packet.type === w.T.PING);
    expect(pings.length).toBe(PC);
    pings.forEach((p, i) => {
      expect(p.at - lastSent).toBeGreaterThanOrEqual((i + 1) * PI * 0.9);
      expect(p.at - lastSent).toBeLessThanOrEqual((i + 1) * PI + 200);
    });
    // Dead: a message now is not echoed (a lingering CLOSE may answer it, with reason 1 if it closed for the timeout).
    conn.sendMessage(Buffer.from('too late'));
    await sleep(300);
    expect(conn.packets().filter((r) => r.packet.type === w.T.DATA)).toEqual([]);
    for (const r of conn.packets().filter((x) => x.packet.type === w.T.CLOSE)) expect((r.packet as w.CloseP).reason).toBe(1);
  });

  it('§7 any valid packet answers a PING: a PING_ACK with the wrong nonce keeps the connection alive past (count + 1) × pingInterval', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true, answerPings: false });
    conn.onReceive = (r) => {
      if (r.packet.type === w.T.PING) conn.send(w.pingAck(conn.id, (r.packet.nonce + 12345) >>> 0));
    };
    await sleep((PC + 2) * PI);
    await echoRoundTrip(conn, 'alive');
    expect(conn.packets().filter((r) => r.packet.type === w.T.PING).length).toBeGreaterThanOrEqual(2);
    expect(conn.packets().filter((r) => r.packet.type === w.T.CLOSE)).toEqual([]);
  });
});

describe('§8 CLOSE and linger', () => {
  it('§8 our CLOSE ends the connection; packets for it within the linger period are answered with CLOSE, at most once per second', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true });
    await echoRoundTrip(conn, 'before');
    conn.send(w.close(conn.id, 0));
    await sleep(50);
    const from = peer.log.length;
    conn.sendMessage(Buffer.from('after'));
    const answer = await conn.next(isType(w.T.CLOSE), 500, 'CLOSE answering a packet of the closed connection', from);
    expect(answer.bytes.length).toBeLessThanOrEqual(130);
    const second = peer.log.length;
    conn.send(w.ping(conn.id, 5));
    conn.sendMessage(Buffer.from('again'));
    await sleep(250); // still within the 500 ms linger period, and within a second of the first answer
    expect(conn.packets(second).map((r) => r.packet.type)).toEqual([]);
    expect(conn.packets(from).filter((r) => r.packet.type === w.T.DATA)).toEqual([]);
  });

  it('§3/§8 a CONNECT reusing the id of a connection closed within the linger period is answered with CLOSE', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true });
    conn.send(w.close(conn.id, 0));
    await sleep(50);
    const from = peer.log.length;
    conn.send(w.connect(conn.id, { nonce: newNonce() }));
    const answer = await conn.next((p) => p.type === w.T.CLOSE || p.type === w.T.CONNECT_ACK, 500, 'answer to the reused CONNECT', from);
    expect(answer.packet.type).toBe(w.T.CLOSE);
  });

  it('§1/§8 a CLOSE whose text is not UTF-8, or longer than 123 bytes, is dropped: the connection continues', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true });
    conn.send(w.close(conn.id, 0, Buffer.from([0xc3, 0x28, 0xff])));
    conn.send(w.close(conn.id, 0, 'a'.repeat(124)));
    await sleep(100);
    await echoRoundTrip(conn, 'still open');
    expect(conn.packets().filter((r) => r.packet.type === w.T.CLOSE)).toEqual([]);
  });

  it('§8 a CLOSE with 123 bytes of text and an unknown reason still closes the connection', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true });
    await echoRoundTrip(conn, 'before');
    conn.send(w.close(conn.id, 200, 'é'.repeat(61) + 'x'));
    await sleep(50);
    const from = peer.log.length;
    conn.sendMessage(Buffer.from('after'));
    await conn.next(isType(w.T.CLOSE), 500, 'CLOSE from the lingering connection', from);
    expect(conn.packets(from).filter((r) => r.packet.type === w.T.DATA)).toEqual([]);
  });
});

describe('§9 DIRECT', () => {
  it('§9 DIRECT on an open connection (empty, small, largest) is echoed as DIRECT, and does not disturb the messages', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true });
    for (const payload of [Buffer.alloc(0), Buffer.from('hi'), bytes(1200 - 6, 3)]) {
      const from = peer.log.length;
      conn.send(w.direct(conn.id, payload));
      const echo = await conn.next(isType(w.T.DIRECT), 1_000, `DIRECT of ${payload.length} bytes`, from);
      expect((echo.packet as w.DirectP).payload.equals(payload)).toBe(true);
    }
    await echoRoundTrip(conn, 'after direct');
    expect(conn.packets().filter((r) => r.packet.type === w.T.DATA).map(dataOf).map((p) => p.seq)).toEqual([0]);
  });

  it('§9/§1 DIRECT on an unknown connection, or longer than maxDatagramSize, is dropped without reply', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true });
    peer.send(w.direct(newId(), Buffer.from('nobody')), port);
    conn.send(w.direct(conn.id, bytes(1201 - 6)));
    expect((await peer.collect(300)).map((r) => r.packet.type).filter((t) => t !== w.T.PING)).toEqual([]);
    await echoRoundTrip(conn, 'fine');
  });
});

/** Datagrams that PROTOCOL.md §1 makes invalid, all aimed at connection `id` with next DATA seq `seq`. */
function invalidDatagrams(id: number, seq: number): Buffer[] {
  const withByte = (buf: Buffer, offset: number, value: number): Buffer => {
    const copy = Buffer.from(buf);
    copy[offset] = value;
    return copy;
  };
  const ping = w.ping(id, 9);
  const list: Buffer[] = [
    Buffer.alloc(0),
    Buffer.from([0x01]),
    w.ping(id, 9).subarray(0, 5),
    withByte(ping, 0, 0x02),
    withByte(ping, 0, 0x00),
    ...[0x00, 0x0a, 0x10, 0x7f, 0xff].map((type) => withByte(ping, 1, type)),
    ping.subarray(0, 9),
    Buffer.concat([ping, Buffer.from([0])]),
    w.pingAck(id, 1).subarray(0, 9),
    w.ping(0, 9),
    w.data(0, seq, 0, 0, 1, Buffer.from('id zero')),
    w.data(id, seq, 0, 0, 1, Buffer.from('x')).subarray(0, 17),
    w.data(id, seq, 0, 0, 0, Buffer.from('count 0')),
    w.data(id, seq, 0, 2, 2, Buffer.from('index = count')),
    w.data(id, seq, 0, 0, 2, Buffer.alloc(0)),
    w.data(id, seq, 0, 0, 1, bytes(1200 - 18 + 1)), // 1201 bytes: longer than the listener's maxDatagramSize
    w.connectAck(id, { nonce: 1 }),
    w.connectAck(id, { nonce: 1, extra: Buffer.from([0xff]) }),
    w.dataAck(id, 0, 8).subarray(0, 12),
    w.dataAck(id, 0, 8, [{ start: 1, end: 1 }]).subarray(0, 13),
    w.dataAck(id, 0, 8, [{ start: 3, end: 2 }]),
    w.dataAck(id, 0, 8, [{ start: 0, end: 1 }]),
    w.dataAck(id, 0, 8, [
      { start: 2, end: 4 },
      { start: 4, end: 6 },
    ]),
    w.dataAck(id, 0, 8, [
      { start: 2, end: 3 },
      { start: 4, end: 6 },
    ]),
    w.dataAck(id, 0, 8, Array.from({ length: 33 }, (_, i) => ({ start: 2 + 2 * i, end: 2 + 2 * i }))),
    w.repeat(id, []),
    w.repeat(id, [{ start: 5, end: 4 }]),
    w.repeat(id, [{ start: 0, end: 0 }]).subarray(0, 14),
    w.close(id, 0, Buffer.from([0xc0, 0x80])),
    w.close(id, 0, 'b'.repeat(124)),
    ping.subarray(0, 6),
  ];
  const next = w.prng(42);
  for (let i = 0; i < 40; i++) {
    const junk = Buffer.from(Array.from({ length: 1 + Math.floor(next() * 300) }, () => Math.floor(next() * 256)));
    if (i % 2 === 0) {
      if (junk[0] === 0x01) junk[0] = 0x81; // wrong version
    } else if (junk.length >= 6) {
      junk[0] = 0x01;
      junk[1] = 0x0a + Math.floor(next() * 0xf0); // no such type
      junk.writeUInt32BE(id, 2);
    }
    list.push(junk);
  }
  return list;
}

describe('§1/§2 bad input and foreign sources', () => {
  it('§1 invalid datagrams (version, type, lengths, ranges, id 0, text, size, junk) are dropped silently; the connection still works', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true });
    await echoRoundTrip(conn, 'before');
    await conn.allAcknowledged();
    const from = peer.log.length;
    for (const datagram of invalidDatagrams(conn.id, conn.nextSeq)) conn.send(datagram);
    await sleep(300);
    // Only the listener's own idle PINGs may arrive: nothing answers the junk.
    expect(conn.packets(from).map((r) => r.packet.type).filter((t) => t !== w.T.PING)).toEqual([]);
    expect(peer.log.slice(from).filter((r) => r.packet.id !== conn.id)).toEqual([]);
    await echoRoundTrip(conn, 'after');
    expect(conn.packets().filter((r) => r.packet.type === w.T.CLOSE)).toEqual([]);
  });

  it('§2 packets with our connectionId from a foreign socket get no reply and do not affect the connection', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const stranger = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true });
    await echoRoundTrip(conn, 'before');
    for (const datagram of [
      w.data(conn.id, conn.nextSeq, conn.nextBatchOut, 0, 1, Buffer.from('forged')),
      w.ping(conn.id, 3),
      w.dataAck(conn.id, 1, 8),
      w.repeat(conn.id, [{ start: 0, end: 0 }]),
      w.direct(conn.id, Buffer.from('forged')),
      w.close(conn.id, 2, 'forged'),
    ]) {
      stranger.send(datagram, port);
    }
    await sleep(300);
    expect(stranger.log.map((r) => r.packet.type)).toEqual([]);
    await echoRoundTrip(conn, 'after');
    expect(conn.messages.map(String)).toEqual(['before', 'after']);
    expect(conn.packets().filter((r) => r.packet.type === w.T.CLOSE || r.packet.type === w.T.DIRECT)).toEqual([]);
  });
});

describe('§3 connection limit', () => {
  it('§3/§8 beyond --max-connections a CONNECT is answered with CLOSE reason 5; a closed connection no longer counts', async () => {
    const { port } = await startEcho(...FLAGS, '--max-connections', '1');
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true });
    const refusedId = newId();
    const from = peer.log.length;
    peer.send(w.connect(refusedId, { nonce: newNonce() }), port);
    const refusal = await peer.next((r) => r.packet.id === refusedId, 1_000, 'answer to the CONNECT beyond the limit', from);
    expect(refusal.packet).toMatchObject({ type: w.T.CLOSE, reason: 5 });
    conn.send(w.close(conn.id, 0));
    await sleep(50);
    const { ack, conn: third } = await handshake(peer, port, { greet: true });
    expect(ack.bytes.length).toBe(14);
    await echoRoundTrip(third, 'room again');
  });
});

describe('small datagrams', () => {
  it('§3/§4 our CONNECT says 576: DATA from the listener never exceeds 576 bytes, and messages still arrive whole', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const { conn } = await handshake(peer, port, { greet: true, maxDatagramSize: 576 });
    const message = bytes(2000, 11);
    conn.sendMessage(message, 576);
    const [echoed] = await conn.messagesArrive(1, 2_000);
    expect(echoed!.equals(message)).toBe(true);
    const data = conn.packets().filter((r) => r.packet.type === w.T.DATA);
    expect(Math.max(...data.map((r) => r.bytes.length))).toBeLessThanOrEqual(576);
    expect(data.map(dataOf).filter((p) => p.index < p.count - 1).every((p) => p.payload.length === 576 - 18)).toBe(true);
  });

  it('§1/§4 an echo at --max-datagram-size 576 sends at most 576 bytes and drops datagrams longer than 576', async () => {
    const { port } = await startEcho(...FLAGS, '--max-datagram-size', '576');
    const peer = await Peer.open();
    const { conn, ack } = await handshake(peer, port, { greet: true });
    expect((ack.packet as w.ConnectP).maxDatagramSize).toBe(576);
    const from = peer.log.length;
    conn.send(w.direct(conn.id, bytes(577 - 6)));
    conn.send(w.data(conn.id, 0, 0, 0, 1, bytes(577 - 18)));
    await sleep(300);
    expect(conn.packets(from).map((r) => r.packet.type).filter((t) => t !== w.T.PING)).toEqual([]);
    const message = bytes(2000, 13);
    conn.sendMessage(message, 576);
    const [echoed] = await conn.messagesArrive(1, 2_000);
    expect(echoed!.equals(message)).toBe(true);
    expect(Math.max(...conn.packets().map((r) => r.bytes.length))).toBeLessThanOrEqual(576);
  });
});

describe('§12 extension offers', () => {
  const ENTRY_ID = 0x7ffe;

  it('§12 a well-formed offer gets a 14-byte CONNECT_ACK, or an answer starting with the marker, accepting only offered ids, no larger than the CONNECT', async () => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const id = newId();
    const n = newNonce();
    const connect = w.connect(id, { nonce: n, padding: w.extensionList([{ id: ENTRY_ID, params: Buffer.from([1, 2, 3]) }]) });
    peer.send(connect, port);
    const ack = await peer.next((r) => r.packet.id === id, 1_000, 'CONNECT_ACK to an offer');
    const p = ack.packet as w.ConnectP;
    expect(p.type).toBe(w.T.CONNECT_ACK);
    expect(p.nonce).toBe(n);
    expect(ack.bytes.length).toBeLessThanOrEqual(connect.length);
    if (ack.bytes.length > 14) {
      expect([...p.extension.subarray(0, 2)]).toEqual([0x52, 0x58]);
      // Entries: id, length, params; ends at id 0 or the end of the datagram.
      const ids: number[] = [];
      for (let at = 2; at + 2 <= p.extension.length; ) {
        const entry = p.extension.readUInt16BE(at);
        if (entry === 0) break;
        const length = p.extension.readUInt16BE(at + 2);
        expect(at + 4 + length).toBeLessThanOrEqual(p.extension.length);
        ids.push(entry);
        at += 4 + length;
      }
      expect(ids.every((x) => x === ENTRY_ID)).toBe(true);
    }
  });

  it.each([
    ['an entry whose length runs past the end of the datagram', () => w.extensionList([{ id: 0x7ffe, params: Buffer.from([1, 2, 3]), length: 200 }])],
    [
      'the same id twice',
      () =>
        w.extensionList([
          { id: 0x7ffe, params: Buffer.from([1]) },
          { id: 0x7ffe, params: Buffer.from([2]) },
        ]),
    ],
  ])('§12 an offer with %s is invalid: no answer at all, and nothing created', async (_, list) => {
    const { port } = await startEcho(...FLAGS);
    const peer = await Peer.open();
    const id = newId();
    peer.send(w.connect(id, { nonce: newNonce(), padding: list() }), port);
    const got = await peer.collect(400);
    expect(got.map((r) => r.packet.type)).toEqual([]);
    // Not created: a valid CONNECT for that id afterwards opens a fresh connection.
    const { conn } = await handshake(peer, port, { id, greet: true });
    await echoRoundTrip(conn, 'fresh');
  });
});
