/**
 * A minimal version-1 peer over raw node:dgram, written from PROTOCOL.md: it records every
 * datagram it receives (with its arrival time), and holds the peer side of connections, whose
 * automatic behaviours (answering PINGs, acknowledging DATA) each test switches on or off.
 */
import { createSocket, type Socket } from 'node:dgram';
import { performance } from 'node:perf_hooks';
import * as w from './wire';

export const HOST = '127.0.0.1';

export interface Received {
  readonly at: number;
  readonly bytes: Buffer;
  readonly address: string;
  readonly port: number;
  readonly packet: w.Parsed;
}

export const now = (): number => performance.now();
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const open = new Set<Peer>();

/** Closes every peer socket opened since the last call (for afterEach). */
export async function closeAllPeers(): Promise<void> {
  await Promise.all([...open].map((peer) => peer.close()));
}

/** Every peer opened since the last closeAllPeers, for end-of-test checks. */
export function openPeers(): Peer[] {
  return [...open];
}

export class Peer {
  readonly log: Received[] = [];
  bytesSent = 0;
  private readonly waiters = new Set<() => void>();
  private readonly conns = new Map<number, PeerConnection>();
  private closed = false;

  private constructor(
    readonly socket: Socket,
    readonly port: number,
  ) {}

  static async open(port = 0): Promise<Peer> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, HOST, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    const peer = new Peer(socket, socket.address().port);
    open.add(peer);
    socket.on('error', () => undefined); // ICMP unreachable after the other side exited
    socket.on('message', (bytes, rinfo) => peer.onMessage({ at: now(), bytes, address: rinfo.address, port: rinfo.port, packet: w.parse(bytes) }));
    return peer;
  }

  send(bytes: Buffer, port: number, address = HOST): void {
    if (this.closed) return;
    this.bytesSent += bytes.length;
    this.socket.send(bytes, port, address);
  }

  bytesReceivedFrom(port: number): number {
    return this.log.filter((r) => r.port === port).reduce((sum, r) => sum + r.bytes.length, 0);
  }

  /** The first datagram at index `from` or later matching `match`; rejects after `ms`. */
  next(match: (r: Received) => boolean, ms: number, label: string, from = 0): Promise<Received> {
    return new Promise((resolve, reject) => {
      let index = from;
      const check = (): boolean => {
        for (; index < this.log.length; index++) {
          const r = this.log[index]!;
          if (match(r)) {
            done();
            resolve(r);
            return true;
          }
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${label} within ${ms} ms; received: ${this.describe(from)}`));
      }, ms);
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      if (!check()) this.waiters.add(check);
    });
  }

  /** Everything that arrived from now for `ms` milliseconds and matches. */
  async collect(ms: number, match: (r: Received) => boolean = () => true): Promise<Received[]> {
    const from = this.log.length;
    await sleep(ms);
    return this.log.slice(from).filter(match);
  }

  describe(from = 0): string {
    const items = this.log.slice(from).map((r) => show(r.packet, r.bytes.length));
    return items.length === 0 ? '(nothing)' : items.slice(-40).join(', ');
  }

  attach(conn: PeerConnection): void {
    this.conns.set(conn.id, conn);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    open.delete(this);
    for (const check of this.waiters) check();
    await new Promise<void>((resolve) => this.socket.close(() => resolve()));
  }

  private onMessage(r: Received): void {
    this.log.push(r);
    const conn = this.conns.get(r.packet.id);
    if (conn !== undefined && r.port === conn.remotePort) conn.onPacket(r);
    for (const check of [...this.waiters]) check();
  }
}

export function show(p: w.Parsed, size: number): string {
  const name = w.TYPE_NAMES[p.type] ?? 'INVALID';
  const detail = (() => {
    switch (p.type) {
      case w.T.DATA:
        return `seq=${p.seq} batch=${p.batch} ${p.index}/${p.count}`;
      case w.T.DATA_ACK:
        return `cum=${p.cumulative} win=${p.window} ranges=${p.ranges.map((r) => `${r.start}-${r.end}`).join('|')}`;
      case w.T.REPEAT:
        return `ranges=${p.ranges.map((r) => `${r.start}-${r.end}`).join('|')}`;
      case w.T.PING:
      case w.T.PING_ACK:
        return `nonce=${p.nonce}`;
      case w.T.CLOSE:
        return `reason=${p.reason}`;
      default:
        return '';
    }
  })();
  return `${name}(${size}B${detail === '' ? '' : ' ' + detail}${p.problem === undefined ? '' : ' !' + p.problem})`;
}

export interface PeerConnectionOptions {
  /** Answer every PING with a PING_ACK (default true). */
  answerPings?: boolean;
  /** Acknowledge every DATA at once (default true); a predicate picks which seqs. */
  ackData?: boolean | ((seq: number) => boolean);
  /** The window this side advertises (CONNECT or CONNECT_ACK, and every DATA_ACK). */
  receiveWindow?: number;
  maxDatagramSize?: number;
}

/** Our side of one connection with the implementation: what we send, and what we received. */
export class PeerConnection {
  answerPings: boolean;
  ackData: boolean | ((seq: number) => boolean);
  receiveWindow: number;
  readonly maxDatagramSize: number;
  /** seqs of DATA received from the implementation. */
  readonly received = new Set<number>();
  /** Whole messages from the implementation, in batch order. */
  readonly messages: Buffer[] = [];
  private readonly batches = new Map<number, { count: number; parts: Map<number, Buffer> }>();
  private nextBatch = 0;
  /** Our own sending state. */
  nextSeq = 0;
  nextBatchOut = 0;

  constructor(
    readonly peer: Peer,
    readonly id: number,
    readonly remotePort: number,
    options: PeerConnectionOptions = {},
  ) {
    this.answerPings = options.answerPings ?? true;
    this.ackData = options.ackData ?? true;
    this.receiveWindow = options.receiveWindow ?? 64;
    this.maxDatagramSize = options.maxDatagramSize ?? 1200;
    peer.attach(this);
  }

  get cumulative(): number {
    let c = 0;
    while (this.received.has(c)) c++;
    return c;
  }

  /** Blocks received beyond the cumulative ack, lowest first (at most 32). */
  get ranges(): w.Range[] {
    const cum = this.cumulative;
    const seqs = [...this.received].filter((s) => s > cum).sort((a, b) => a - b);
    const out: w.Range[] = [];
    for (const s of seqs) {
      const last = out[out.length - 1];
      if (last !== undefined && last.end + 1 === s) out[out.length - 1] = { start: last.start, end: s };
      else out.push({ start: s, end: s });
    }
    return out.slice(0, 32);
  }

  send(bytes: Buffer): void {
    this.peer.send(bytes, this.remotePort);
  }

  /** Sends `message` as the next batch, split at our datagram size as §4 says; returns the seqs used. */
  sendMessage(message: Uint8Array, datagramSize = this.maxDatagramSize): number[] {
    const packets = this.fragment(message, datagramSize);
    for (const p of packets) this.send(p);
    return packets.map((p) => p.readUInt32BE(6));
  }

  /** The DATA packets of the next batch, without sending them. */
  fragment(message: Uint8Array, datagramSize = this.maxDatagramSize): Buffer[] {
    const size = datagramSize - 18;
    const count = Math.max(1, Math.ceil(message.length / size));
    const batch = this.nextBatchOut++;
    const out: Buffer[] = [];
    for (let i = 0; i < count; i++) out.push(w.data(this.id, this.nextSeq++, batch, i, count, message.subarray(i * size, (i + 1) * size)));
    return out;
  }

  ack(): void {
    this.send(w.dataAck(this.id, this.cumulative, this.receiveWindow, this.ranges));
  }

  /** Called first for every datagram of this connection (tests react to packets synchronously). */
  onReceive: ((r: Received) => void) | undefined;

  onPacket(r: Received): void {
    this.onReceive?.(r);
    const p = r.packet;
    if (p.problem !== undefined) return;
    if (p.type === w.T.PING && this.answerPings) this.send(w.pingAck(this.id, p.nonce));
    if (p.type !== w.T.DATA) return;
    // Taken only inside our window, as a receiver must; acknowledged only when the test allows.
    const inWindow = ((p.seq - this.cumulative) >>> 0) < this.receiveWindow;
    if (inWindow && !this.received.has(p.seq)) {
      this.received.add(p.seq);
      let batch = this.batches.get(p.batch);
      if (batch === undefined) this.batches.set(p.batch, (batch = { count: p.count, parts: new Map() }));
      batch.parts.set(p.index, Buffer.from(p.payload));
      for (let b = this.batches.get(this.nextBatch); b !== undefined && b.parts.size === b.count; b = this.batches.get(this.nextBatch)) {
        this.messages.push(Buffer.concat([...Array(b.count).keys()].map((i) => b.parts.get(i)!)));
        this.batches.delete(this.nextBatch++);
      }
    }
    const allowed = typeof this.ackData === 'function' ? this.ackData(p.seq) : this.ackData;
    if (allowed) this.ack();
  }

  /** Resolves once `n` messages have arrived; rejects after `ms`. */
  async messagesArrive(n: number, ms: number): Promise<Buffer[]> {
    const deadline = now() + ms;
    while (this.messages.length < n) {
      if (now() > deadline) throw new Error(`${this.messages.length} of ${n} messages arrived within ${ms} ms; received: ${this.peer.describe()}`);
      await sleep(5);
    }
    return this.messages;
  }

  /** Resolves once a DATA_ACK covers everything we sent (so no late ack is mistaken for a reply to what follows). */
  async allAcknowledged(ms = 2_000): Promise<void> {
    const all = this.nextSeq;
    await this.next((p) => p.type === w.T.DATA_ACK && !w.after(all, p.cumulative), ms, `DATA_ACK with cumulative ${all}`);
    await sleep(30);
  }

  /** Datagrams on this connection from its remote port. */
  packets(from = 0): Received[] {
    return this.peer.log.slice(from).filter((r) => r.packet.id === this.id && r.port === this.remotePort);
  }

  next(match: (p: w.Parsed, r: Received) => boolean, ms: number, label: string, from = 0): Promise<Received> {
    return this.peer.next((r) => r.packet.id === this.id && r.port === this.remotePort && match(r.packet, r), ms, label, from);
  }
}
