/**
 * Conformance of the starter (`rx-rudp connect`) to PROTOCOL.md, checked from outside: our raw
 * version-1 peer plays the listener on a loopback socket; the CLI reads stdin lines as messages
 * and prints received messages on stdout, DIRECT on stderr.
 */
import { Peer, PeerConnection, now, show, sleep, type Received } from './peer';
import { acceptConnect, startConnect, useConformance, type Cli } from './harness';
import * as w from './wire';
import { expectBackOff } from './timing';

jest.setTimeout(15_000);
useConformance();

const PI = 250;
const PC = 2;
const DT = 100;
const FLAGS = ['--ping-interval', String(PI), '--ping-packet-count', String(PC), '--delivery-timeout', String(DT), '--connect-timeout', '5000'];
const PROMPT = 100;

const isType = (type: number) => (p: w.Parsed) => p.type === type;
const dataOf = (p: w.Parsed) => p as w.DataP;

/** Our listener peer, a connect CLI towards it, and the accepted connection. */
async function connected(flags: string[] = FLAGS, options: Parameters<typeof acceptConnect>[1] = {}): Promise<{ peer: Peer; cli: Cli; conn: PeerConnection }> {
  const peer = await Peer.open();
  const cli = startConnect(peer, ...flags);
  const { conn } = await acceptConnect(peer, options);
  return { peer, cli, conn };
}

/** The padding of a CONNECT is zeros, or (§12) an offer: marker, entries that parse, then zeros. */
function paddingProblem(extension: Buffer): string | undefined {
  if (extension.every((b) => b === 0)) return undefined;
  if (extension[0] !== 0x52 || extension[1] !== 0x58) return 'non-zero padding without the RX marker';
  const ids = new Set<number>();
  let at = 2;
  while (at + 2 <= extension.length) {
    const id = extension.readUInt16BE(at);
    if (id === 0) return extension.subarray(at).every((b) => b === 0) ? undefined : 'bytes after the list end are not zero';
    if (at + 4 > extension.length) return 'entry header runs past the datagram';
    const length = extension.readUInt16BE(at + 2);
    if (at + 4 + length > extension.length) return `entry ${id} runs past the datagram`;
    if (ids.has(id)) return `entry ${id} twice`;
    ids.add(id);
    at += 4 + length;
  }
  return undefined;
}

describe('§3 handshake (starter)', () => {
  it('§3 CONNECT is at least 64 bytes, zero-padded (or a well-formed offer), resent unchanged every deliveryTimeout until answered, then never again', async () => {
    const peer = await Peer.open();
    const cli = startConnect(peer, ...FLAGS);
    cli.write('hello\n');
    const connects: Received[] = [];
    for (let i = 0; i < 4; i++) connects.push(await peer.next((r) => r.packet.type === w.T.CONNECT, 3_000, `CONNECT #${i + 1}`, connects.length === 0 ? 0 : peer.log.indexOf(connects[connects.length - 1]!) + 1));
    for (const c of connects) {
      expect(c.bytes.length).toBeGreaterThanOrEqual(64);
      expect(paddingProblem((c.packet as w.ConnectP).extension)).toBeUndefined();
      expect(c.bytes.equals(connects[0]!.bytes)).toBe(true);
      expect(c.port).toBe(connects[0]!.port);
    }
    // Resent every deliveryTimeout: CONNECT k leaves at least k × DT after the first (measured from
    // its arrival, which a busy test process may read late: only the average spacing is bounded
    // above, with room for a slow timer).
    const first = connects[0]!.at;
    for (let k = 1; k < connects.length; k++) expect(connects[k]!.at - first + 50).toBeGreaterThanOrEqual(0.9 * k * DT);
    expect((connects.at(-1)!.at - first) / (connects.length - 1)).toBeLessThanOrEqual(DT + 150);
    const p = connects[0]!.packet as w.ConnectP;
    expect(p.id).not.toBe(0);
    const answeredAt = peer.log.length;
    const conn = new PeerConnection(peer, p.id, connects[0]!.port);
    conn.send(w.connectAck(p.id, { nonce: p.nonce }));
    const messages = await conn.messagesArrive(1, 2_000);
    expect(messages.map(String)).toEqual(['hello']);
    await sleep(3 * DT);
    expect(peer.log.slice(answeredAt + 1).filter((r) => r.packet.type === w.T.CONNECT)).toEqual([]);
  });

  it('§3 a connect attempt nobody answers fails after connectTimeout: exit 1 with a timeout message', async () => {
    const peer = await Peer.open();
    const startedAt = now();
    const cli = startConnect(peer, ...FLAGS.slice(0, -2), '--connect-timeout', '600');
    const exit = await cli.exit(5_000);
    expect(exit.code).toBe(1);
    expect(cli.stderr).toMatch(/time/i);
    expect(now() - startedAt).toBeGreaterThanOrEqual(600);
    const count = peer.log.filter((r) => r.packet.type === w.T.CONNECT).length;
    expect(count).toBeGreaterThanOrEqual(3);
    expect(count).toBeLessThanOrEqual(600 / DT + 2);
  });

  it('§3 the starter accepts a CONNECT_ACK only with its id and nonce, from the address and port it connected to', async () => {
    const peer = await Peer.open();
    const stranger = await Peer.open();
    const cli = startConnect(peer, ...FLAGS);
    cli.write('hello\n');
    const first = await peer.next((r) => r.packet.type === w.T.CONNECT, 5_000, 'CONNECT');
    const p = first.packet as w.ConnectP;
    const offered = p.extension.some((b) => b !== 0);
    const bogus = [
      w.connectAck(p.id, { nonce: (p.nonce + 1) >>> 0 }),
      w.connectAck((p.id + 1) >>> 0 || 1, { nonce: p.nonce }),
      // Longer than 14 bytes without a parseable answer: invalid whether or not an offer was made.
      w.connectAck(p.id, { nonce: p.nonce, extra: Buffer.alloc(6, 0xff) }),
      ...(offered ? [] : [w.connectAck(p.id, { nonce: p.nonce, extra: Buffer.alloc(2) })]),
    ];
    for (const ack of bogus) peer.send(ack, first.port);
    stranger.send(w.connectAck(p.id, { nonce: p.nonce }), first.port);
    const from = peer.log.length;
    await sleep(3 * DT);
    // Still handshaking: more CONNECTs, and nothing a connection would send.
    const later = peer.log.slice(from);
    expect(later.filter((r) => r.packet.type === w.T.CONNECT).length).toBeGreaterThanOrEqual(1);
    expect(later.filter((r) => r.packet.type !== w.T.CONNECT).map((r) => r.packet.type)).toEqual([]);
    const conn = new PeerConnection(peer, p.id, first.port);
    conn.send(w.connectAck(p.id, { nonce: p.nonce }));
    expect((await conn.messagesArrive(1, 2_000)).map(String)).toEqual(['hello']);
  });
});

describe('§4/§5 DATA (starter)', () => {
  it('§4/§5 stdin lines go out as DATA (seq and batch from 0); our DATA is printed and acknowledged within 5 ms (slack 100 ms)', async () => {
    const { peer, cli, conn } = await connected();
    cli.write('one\ntwo\n');
    const messages = await conn.messagesArrive(2, 2_000);
    expect(messages.map(String)).toEqual(['one', 'two']);
    const data = conn.packets().filter((r) => r.packet.type === w.T.DATA).map((r) => dataOf(r.packet));
    expect(data.map((d) => [d.seq, d.batch, d.index, d.count])).toEqual(expect.arrayContaining([[0, 0, 0, 1], [1, 1, 0, 1]]));
    for (let i = 0; i < 3; i++) {
      const from = peer.log.length;
      const sentAt = now();
      conn.sendMessage(Buffer.from(`from listener ${i}`));
      const ack = await conn.next((p) => p.type === w.T.DATA_ACK && p.cumulative === i + 1, 1_000, `DATA_ACK ${i + 1}`, from);
      expect(ack.at - sentAt).toBeLessThanOrEqual(PROMPT);
    }
    await cli.waitFor('stdout', /^from listener 0\nfrom listener 1\nfrom listener 2\n$/, 2_000);
  });

  it('§5 a duplicate DATA that arrives right after the DATA_ACK covering it is acknowledged again (starter)', async () => {
    const { peer, cli, conn } = await connected();
    for (let i = 0; i < 5; i++) {
      const [packet] = conn.fragment(Buffer.from(`dup${i}`));
      let duplicateAt = 0;
      let duplicateIndex = 0;
      conn.onReceive = (r) => {
        if (duplicateAt === 0 && r.packet.type === w.T.DATA_ACK && w.after(r.packet.cumulative, i)) {
          conn.send(packet!);
          duplicateAt = now();
          duplicateIndex = peer.log.length;
        }
      };
      conn.send(packet!);
      await conn.next((p) => p.type === w.T.DATA_ACK && w.after(p.cumulative, i), 1_000, `first DATA_ACK of seq ${i}`);
      conn.onReceive = undefined;
      const second = await conn.next((p) => p.type === w.T.DATA_ACK && w.after(p.cumulative, i), PROMPT + 100, `a DATA_ACK for the duplicate of seq ${i}`, duplicateIndex);
      expect(second.at - duplicateAt).toBeLessThanOrEqual(PROMPT);
    }
    await cli.waitFor('stdout', /^dup0\ndup1\ndup2\ndup3\ndup4\n$/, 2_000);
  });

  it('§3/§4 our CONNECT_ACK says 576: the starter sends no DATA above 576 bytes, and a long line arrives whole', async () => {
    const { cli, conn } = await connected(FLAGS, { maxDatagramSize: 576 });
    const line = 'x'.repeat(1500) + 'y'.repeat(500);
    cli.write(`${line}\n`);
    const [message] = await conn.messagesArrive(1, 2_000);
    expect(message!.toString()).toBe(line);
    const data = conn.packets().filter((r) => r.packet.type === w.T.DATA);
    expect(Math.max(...data.map((r) => r.bytes.length))).toBeLessThanOrEqual(576);
    expect(data.map((r) => dataOf(r.packet)).filter((p) => p.index < p.count - 1).every((p) => p.payload.length === 576 - 18)).toBe(true);
  });
});

describe('§5 retransmission and window (starter)', () => {
  it('§5 a line we never acknowledge is resent with back-off, never faster than the RTO floor', async () => {
    const { cli, conn } = await connected(['--ping-interval', '3000', '--delivery-timeout', '400'], { ackData: false });
    const writtenAt = now();
    cli.write('unacked\n');
    await conn.next((p) => p.type === w.T.DATA, 2_000, 'DATA');
    // Three resends: by 2.8 s even if a loaded machine inflated the handshake's RTT sample and the
    // RTO sits at its 400 ms cap (400 + 800 + 1600); sooner with the usual RTO near its floor.
    const dataTimes = (): number[] => conn.packets().filter((r) => r.packet.type === w.T.DATA).map((r) => r.at);
    for (const started = now(); dataTimes().length < 4 && now() - started < 4_000; ) await sleep(20);
    const times = dataTimes();
    expect(times.length).toBeGreaterThanOrEqual(4);
    // Each resend no sooner than the floor's back-off allows (which also bounds how many came).
    expectBackOff(times, writtenAt, 10);
  });

  it('§5/§8 the starter never has more DATA beyond our cumulative in flight than our window (2); at the end of stdin it closes normally', async () => {
    const { cli, conn } = await connected(FLAGS, { receiveWindow: 2, ackData: false });
    let allowedBelow = 2;
    const violations: string[] = [];
    conn.onReceive = (r) => {
      if (r.packet.type === w.T.DATA && r.packet.seq >= allowedBelow) violations.push(`seq ${r.packet.seq} while allowed below ${allowedBelow}`);
    };
    cli.end('l0\nl1\nl2\nl3\nl4\n');
    await sleep(400);
    expect(conn.received).toEqual(new Set([0, 1]));
    allowedBelow = 4;
    conn.ack();
    await sleep(300);
    expect(conn.received).toEqual(new Set([0, 1, 2, 3]));
    allowedBelow = Infinity;
    conn.receiveWindow = 64;
    conn.ackData = true;
    conn.ack();
    expect((await conn.messagesArrive(5, 2_000)).map(String)).toEqual(['l0', 'l1', 'l2', 'l3', 'l4']);
    const close = await conn.next(isType(w.T.CLOSE), 2_000, 'CLOSE after the end of stdin');
    expect((close.packet as w.CloseP).reason).toBe(0);
    expect((await cli.exit(3_000)).code).toBe(0);
    expect(violations).toEqual([]);
  });
});

describe('§6 REPEAT (starter)', () => {
  /** Answers only the second CONNECT, so the handshake gives no RTT sample (Karn) and the RTO stays deliveryTimeout. */
  async function connectedWithoutSample(flags: string[], options: Parameters<typeof acceptConnect>[1] = {}) {
    const peer = await Peer.open();
    const cli = startConnect(peer, ...flags);
    await acceptConnect(peer, { answer: false });
    const second = await peer.next((r) => r.packet.type === w.T.CONNECT, 3_000, 'second CONNECT', peer.log.findIndex((r) => r.packet.type === w.T.CONNECT) + 1);
    const p = second.packet as w.ConnectP;
    const conn = new PeerConnection(peer, p.id, second.port, options);
    conn.send(w.connectAck(p.id, { nonce: p.nonce, receiveWindow: conn.receiveWindow }));
    return { peer, cli, conn };
  }

  it('§6 a REPEAT for a seq we have not acknowledged is resent at once, long before its timeout', async () => {
    const { peer, cli, conn } = await connectedWithoutSample(['--ping-interval', '3000', '--delivery-timeout', '600'], { ackData: false });
    cli.write('resend me\n');
    const first = await conn.next((p) => p.type === w.T.DATA, 2_000, 'DATA');
    const from = peer.log.length;
    const askedAt = now();
    conn.send(w.repeat(conn.id, [{ start: dataOf(first.packet).seq, end: dataOf(first.packet).seq }]));
    const resent = await conn.next((p) => p.type === w.T.DATA && p.seq === dataOf(first.packet).seq, 400, 'resend after REPEAT', from);
    expect(resent.at - askedAt).toBeLessThanOrEqual(PROMPT);
    expect(resent.at - first.at).toBeLessThan(600);
  });

  it('§6 a gap in our DATA makes the starter send REPEAT naming exactly the missing seq, and not again within deliveryTimeout / 2', async () => {
    const dt = 200;
    const { cli, conn } = await connectedWithoutSample(['--ping-interval', '3000', '--delivery-timeout', String(dt)]);
    const packets = [0, 1, 2, 3, 4].map((i) => conn.fragment(Buffer.from(`m${i}`))[0]!);
    const gapAt = now();
    for (const i of [0, 2, 3, 4]) conn.send(packets[i]!);
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
    await cli.waitFor('stdout', /^m0\nm1\nm2\nm3\nm4\n$/, 2_000);
  });
});

describe('§7 PING (starter)', () => {
  it('§7 the starter answers every PING at once with a PING_ACK echoing its nonce', async () => {
    const { peer, conn } = await connected();
    for (const nonce of [3, 0xfeedf00d]) {
      const from = peer.log.length;
      const sentAt = now();
      conn.send(w.ping(conn.id, nonce));
      const answer = await conn.next(isType(w.T.PING_ACK), 1_000, `PING_ACK ${nonce}`, from);
      expect((answer.packet as w.PingP).nonce).toBe(nonce);
      expect(answer.at - sentAt).toBeLessThanOrEqual(PROMPT);
    }
  });

  it('§7 the starter PINGs a silent listener at 1× and 2× pingInterval, then gives up: exit 1 with a timeout message', async () => {
    const { cli, conn } = await connected(FLAGS, { answerPings: false });
    const exit = await cli.exit((PC + 1) * PI + 3_000);
    expect(exit.code).toBe(1);
    expect(cli.stderr).toMatch(/time|silent|no answer/i);
    const pings = conn.packets().filter((r) => r.packet.type === w.T.PING);
    expect(pings.length).toBe(PC);
    const ackSentAt = conn.packets()[0]!.at; // the CONNECT we answered at once: our last packet to the starter
    pings.forEach((p, i) => {
      expect(p.at - ackSentAt).toBeGreaterThanOrEqual((i + 1) * PI * 0.9 - 5);
      expect(p.at - ackSentAt).toBeLessThanOrEqual((i + 1) * PI + 250);
    });
  });
});

describe('§8 CLOSE (starter)', () => {
  it.each([
    [0, 0],
    [2, 1],
  ])('§8 CLOSE reason %i from the listener ends the connection at once: the CLI exits %i', async (reason, code) => {
    const { cli, conn } = await connected();
    conn.sendMessage(Buffer.from('hi'));
    await cli.waitFor('stdout', /^hi\n$/, 2_000);
    conn.send(w.close(conn.id, reason, 'bye'));
    const exit = await cli.exit(2_000);
    expect(exit.code).toBe(code);
  });

  it('§1/§8 a CLOSE with non-UTF-8 text or more than 123 bytes of text is dropped: the starter stays connected', async () => {
    const { cli, conn } = await connected();
    conn.send(w.close(conn.id, 0, Buffer.from([0xed, 0xa0, 0x80])));
    conn.send(w.close(conn.id, 0, 'c'.repeat(124)));
    await sleep(150);
    conn.sendMessage(Buffer.from('still here'));
    await cli.waitFor('stdout', /^still here\n$/, 2_000);
    expect(cli.child.exitCode).toBeNull();
  });
});

describe('§9 DIRECT and §1/§2 bad input (starter)', () => {
  it('§9 a DIRECT from the listener is delivered (printed on stderr) and does not disturb the messages', async () => {
    const { cli, conn } = await connected();
    conn.send(w.direct(conn.id, Buffer.from('side note')));
    await cli.waitFor('stderr', /direct: side note\n/, 2_000);
    conn.sendMessage(Buffer.from('main line'));
    await cli.waitFor('stdout', /^main line\n$/, 2_000);
  });

  it('§1/§2 invalid datagrams and packets from a foreign socket are dropped without reply; the starter still works', async () => {
    const { peer, cli, conn } = await connected();
    const stranger = await Peer.open();
    conn.sendMessage(Buffer.from('before'));
    await cli.waitFor('stdout', /^before\n$/, 2_000);
    await conn.allAcknowledged();
    const from = peer.log.length;
    const ping = w.ping(conn.id, 1);
    const wrongVersion = Buffer.from(ping);
    wrongVersion[0] = 0x02;
    const wrongType = Buffer.from(ping);
    wrongType[1] = 0x0b;
    for (const datagram of [
      wrongVersion,
      wrongType,
      ping.subarray(0, 9),
      Buffer.concat([ping, Buffer.from([0])]),
      w.ping(0, 1),
      w.connect(conn.id, { nonce: 1 }), // a CONNECT to a starter: nothing to answer
      w.dataAck(conn.id, 0, 8, [{ start: 0, end: 0 }]),
      w.data(conn.id, conn.nextSeq, conn.nextBatchOut, 1, 1, Buffer.from('bad index')),
      w.data(conn.id, conn.nextSeq, conn.nextBatchOut, 0, 1, Buffer.alloc(1200 - 18 + 1)),
      w.close(conn.id, 0, Buffer.from([0xff])),
      Buffer.from('junk that is not a packet at all'),
    ]) {
      conn.send(datagram);
    }
    stranger.send(w.data(conn.id, conn.nextSeq, conn.nextBatchOut, 0, 1, Buffer.from('forged')), conn.remotePort);
    stranger.send(w.ping(conn.id, 2), conn.remotePort);
    stranger.send(w.close(conn.id, 0), conn.remotePort);
    await sleep(300);
    expect(conn.packets(from).filter((r) => r.packet.type !== w.T.PING).map((r) => show(r.packet, r.bytes.length))).toEqual([]);
    expect(stranger.log).toEqual([]);
    conn.sendMessage(Buffer.from('after'));
    await cli.waitFor('stdout', /^before\nafter\n$/, 2_000);
    expect(cli.child.exitCode).toBeNull();
  });
});
