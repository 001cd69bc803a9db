/**
 * The two ends of one bench/path.ts run, each started inside a network namespace by the
 * benchmark: `--role server` (the receiver, in ruA) and `--role client` (the sender, in ruB), for
 * one transport (`--transport rudp|tcp|udx|udp`) and one case (`--case stream|bulk`).
 *
 * Clock: stamps and arrival times are process.hrtime.bigint(), CLOCK_MONOTONIC, which is one
 * clock for every process of the machine (network namespaces do not change it), read directly.
 * performance.timeOrigin + performance.now() would add each process's own estimate of its start
 * time on the wall clock, an offset between the two processes that nothing measures.
 *
 * Byte-stream transports (TCP, udx) carry each message behind a 4-byte little-endian length.
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { Subscription, mergeMap, range } from 'rxjs';
import { connect, listen, type Connection } from '../lib/index';
import { cpuSeconds, fillByte, flagNumber, flagString, parseFlags, type Flags } from './lib/common';
import { CommandBox, childGuard, emit } from './lib/proc';
import { loadUdx, udxStats } from './lib/udx';

const MIB = 1024 * 1024;
/** The socket buffers rx-rudp's adapter asks for; the raw UDP and udx sockets get the same. */
const SOCKET_BUFFER = 4 * MIB;
/** rx-rudp bulk sender: messages unacknowledged at once (as bench/bulk.ts). */
const SEND_CONCURRENCY = 32;
const SAMPLE_STRIDE = 1021;
const HEADER = 12; // u32 sequence number + u64 hrtime stamp
/** UDP payload of a clock datagram (44 bytes as an IP packet). */
const CLOCK_PAYLOAD = 16;

const now = (): bigint => process.hrtime.bigint();

// ---- framing --------------------------------------------------------------------------------------

/** Splits a byte stream of length-prefixed frames into per-frame slices, without copying. */
class Deframer {
  private readonly header = Buffer.alloc(4);
  private headerHave = 0;
  private remaining = 0;
  private length = 0;
  private frame = -1;
  private offset = 0;

  constructor(
    private readonly onSlice: (frame: number, offset: number, slice: Buffer) => void,
    private readonly onEnd: (frame: number, length: number) => void,
  ) {}

  push(chunk: Buffer): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.remaining === 0) {
        const take = Math.min(4 - this.headerHave, chunk.length - i);
        chunk.copy(this.header, this.headerHave, i, i + take);
        this.headerHave += take;
        i += take;
        if (this.headerHave < 4) return;
        this.headerHave = 0;
        this.length = this.remaining = this.header.readUInt32LE(0);
        this.frame++;
        this.offset = 0;
        if (this.remaining === 0) {
          this.onEnd(this.frame, 0);
          continue;
        }
      }
      const take = Math.min(this.remaining, chunk.length - i);
      this.onSlice(this.frame, this.offset, chunk.subarray(i, i + take));
      this.offset += take;
      this.remaining -= take;
      i += take;
      if (this.remaining === 0) this.onEnd(this.frame, this.length);
    }
  }
}

/** Whole frames (small messages) out of a byte stream. */
function frames(onMessage: (message: Buffer) => void): Deframer {
  let current = Buffer.alloc(0);
  return new Deframer(
    (_frame, offset, slice) => {
      if (offset === 0) current = Buffer.allocUnsafe(slice.length);
      if (offset + slice.length > current.length) {
        const grown = Buffer.allocUnsafe(offset + slice.length);
        current.copy(grown, 0, 0, offset);
        current = grown;
      }
      slice.copy(current, offset);
    },
    (_frame, length) => onMessage(current.subarray(0, length)),
  );
}

function lengthPrefix(length: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(length, 0);
  return b;
}

// ---- receivers (server role) ------------------------------------------------------------------------

interface Receiver {
  /** A whole message (message transports and deframed small messages). */
  message(m: Uint8Array): void;
  /** A slice of frame `frame` of a byte stream (bulk). */
  slice?(frame: number, offset: number, slice: Buffer): void;
  frameEnd?(frame: number, length: number): void;
  report(): Record<string, unknown>;
}

function streamReceiver(count: number, onDone: () => void): Receiver {
  const seen = new Uint8Array(count);
  const latencies: number[] = [];
  let received = 0;
  let duplicates = 0;
  let outOfOrder = 0;
  let malformed = 0;
  let next = 0;
  let lastNs = 0n;
  let cpu0: NodeJS.CpuUsage | undefined;
  return {
    message(m) {
      const t = now();
      cpu0 ??= process.cpuUsage();
      if (m.length < HEADER) {
        malformed++;
        return;
      }
      const view = Buffer.from(m.buffer, m.byteOffset, m.length);
      const seq = view.readUInt32LE(0);
      const stamp = view.readBigUInt64LE(4);
      if (seq >= count) {
        malformed++;
        return;
      }
      if (seen[seq] === 1) {
        duplicates++;
        return;
      }
      seen[seq] = 1;
      received++;
      if (seq !== next) outOfOrder++;
      next = Math.max(next, seq + 1);
      latencies.push(Math.round(Number(t - stamp) / 1e3) / 1e3); // ms, µs resolution
      lastNs = t;
      if (received === count) onDone();
    },
    report: () => ({ count, received, duplicates, outOfOrder, malformed, latencies, lastNs: Number(lastNs), cpuSeconds: cpu0 ? cpuSeconds(cpu0).total : 0 }),
  };
}

function bulkReceiver(total: number, onDone: () => void): Receiver {
  let bytes = 0;
  let bad = 0;
  let frames = 0;
  let firstNs = 0n;
  let lastNs = 0n;
  let cpu0: NodeJS.CpuUsage | undefined;
  let done = false;
  const progress = (n: number): void => {
    lastNs = now();
    bytes += n;
    if (!done && bytes >= total) {
      done = true;
      onDone();
    }
  };
  const check = (frame: number, slice: Uint8Array): void => {
    if (firstNs === 0n) {
      firstNs = now();
      cpu0 = process.cpuUsage();
    }
    const b = fillByte(frame);
    for (let j = 0; j < slice.length; j += SAMPLE_STRIDE) if (slice[j] !== b) bad++;
    if (slice.length > 0 && slice[slice.length - 1] !== b) bad++;
  };
  return {
    message(m) {
      check(frames, m);
      if (m.length !== MIB) bad++;
      frames++;
      progress(m.length);
    },
    slice(frame, _offset, slice) {
      check(frame, slice);
      progress(slice.length);
    },
    frameEnd(frame, length) {
      if (length !== MIB || frame !== frames) bad++;
      frames++;
    },
    report: () => ({ total, bytes, bad, frames, firstNs: Number(firstNs), lastNs: Number(lastNs), cpuSeconds: cpu0 ? cpuSeconds(cpu0).total : 0 }),
  };
}

async function server(flags: Flags): Promise<void> {
  const box = new CommandBox();
  childGuard(flagNumber(flags, 'limit', 120_000), box.handle);
  const transport = flagString(flags, 'transport');
  const kind = flagString(flags, 'case');
  const host = flagString(flags, 'host') ?? '0.0.0.0';
  const port = flagNumber(flags, 'port', 0);
  const done = (): void => emit({ type: 'done' });
  const rx = kind === 'stream' ? streamReceiver(flagNumber(flags, 'count', 0), done) : bulkReceiver(flagNumber(flags, 'total', 0), done);
  let extra = (): Record<string, unknown> => ({});
  const feeder = (): Deframer =>
    kind === 'stream' ? frames((m) => rx.message(m)) : new Deframer((f, o, s) => rx.slice!(f, o, s), (f, l) => rx.frameEnd!(f, l));

  if (transport === 'rudp') {
    let connection: Connection | undefined;
    const subscription: Subscription = listen({ host, port, onListening: (a) => emit({ type: 'ready', port: a.port }) }).subscribe({
      next: (conn) => {
        connection = conn;
        conn.messages$.subscribe({ next: (m) => rx.message(m), error: (e: Error) => emit({ type: 'error', message: `rudp receiver: ${e.message}` }) });
      },
      error: (e: Error) => emit({ type: 'error', message: `rudp listen: ${e.message}` }),
    });
    extra = () => {
      const st = connection?.stats;
      return st === undefined
        ? {}
        : { packetsReceived: st.packetsReceived, dataPacketsReceived: st.dataPacketsReceived, duplicatesReceived: st.duplicatesReceived, acksSent: st.acksSent, repeatsSent: st.repeatsSent, packetsSent: st.packetsSent, droppedDatagrams: st.droppedDatagrams };
    };
    void subscription;
  } else if (transport === 'tcp') {
    const tcp = net.createServer((socket) => {
      socket.setNoDelay(true);
      const d = feeder();
      socket.on('data', (chunk: Buffer) => d.push(chunk));
      socket.on('error', () => undefined); // the sender exits without a goodbye
    });
    tcp.listen(port, host, () => emit({ type: 'ready', port: (tcp.address() as net.AddressInfo).port }));
  } else if (transport === 'udx') {
    const u = loadUdx();
    const socket = u.createSocket();
    socket.bind(port, host);
    socket.setRecvBufferSize(SOCKET_BUFFER);
    socket.setSendBufferSize(SOCKET_BUFFER);
    // udx has no handshake: both ends know each other's stream id and address up front.
    const stream = u.createStream(1);
    stream.connect(socket, 2, flagNumber(flags, 'peer-port', 0), flagString(flags, 'peer-host') ?? '127.0.0.1');
    const d = feeder();
    stream.on('data', (chunk: Buffer) => d.push(chunk));
    stream.on('error', () => undefined);
    extra = () => ({ ...udxStats(stream), recvBuffer: socket.getRecvBufferSize(), sendBuffer: socket.getSendBufferSize() });
    emit({ type: 'ready', port, recvBuffer: socket.getRecvBufferSize(), sendBuffer: socket.getSendBufferSize() });
  } else if (transport === 'udp') {
    const socket = dgram.createSocket('udp4');
    socket.on('message', (m) => rx.message(m));
    socket.bind(port, host, () => {
      socket.setRecvBufferSize(SOCKET_BUFFER);
      emit({ type: 'ready', port: socket.address().port, recvBuffer: socket.getRecvBufferSize(), sendBuffer: socket.getSendBufferSize() });
    });
  } else {
    throw new Error(`unknown --transport ${transport}`);
  }

  const clockPort = flagNumber(flags, 'clock-port', 0);
  if (clockPort > 0) {
    // The clock flow's far end: echoes every datagram, so both directions carry it.
    const clock = dgram.createSocket('udp4');
    let echoed = 0;
    clock.on('message', (m, from) => {
      echoed++;
      clock.send(m, from.port, from.address);
    });
    clock.bind(clockPort, host);
    void box.next('clock').then(() => emit({ type: 'clock', echoed }));
  }

  await box.next('finish');
  emit({ type: 'report', ...rx.report(), transportStats: extra() });
}

/**
 * A clock flow beside the transport: small datagrams at `rate` per second to the server, which
 * echoes them. linkem steps its Gilbert-Elliott chain once per packet, so without it a burst
 * lasts a number of the transport's own packets, however long it stays quiet; with it the chain
 * steps at least `rate` times a second each way, and a burst ends in time, as on a real link.
 */
function startClock(flags: Flags, box: CommandBox): void {
  const rate = flagNumber(flags, 'clock-rate', 0);
  if (rate <= 0) return;
  const host = flagString(flags, 'host') ?? '127.0.0.1';
  const port = flagNumber(flags, 'clock-port', 0);
  const socket = dgram.createSocket('udp4');
  const payload = Buffer.alloc(CLOCK_PAYLOAD, 0x63);
  let sent = 0;
  let received = 0;
  socket.on('message', () => void received++);
  const t0 = performance.now();
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - t0) * rate) / 1000);
    while (sent < due) {
      sent++;
      socket.send(payload, port, host);
    }
  }, 1000 / rate);
  void box.next('clock-stop').then(async () => {
    clearInterval(timer);
    await new Promise((resolve) => setTimeout(resolve, 100)); // the last echoes come back (RTT 20 ms)
    emit({ type: 'clock', sent, received });
  });
}

// ---- senders (client role) ----------------------------------------------------------------------------

/** A stream message: sequence number and send stamp up front, `size` bytes, `prefix` for a byte stream. */
function streamMessage(seq: number, size: number, prefix: boolean): Buffer {
  const off = prefix ? 4 : 0;
  const b = Buffer.alloc(size + off, 0x5a);
  if (prefix) b.writeUInt32LE(size, 0);
  b.writeUInt32LE(seq, off);
  b.writeBigUInt64LE(now(), off + 4);
  return b;
}

/** Calls send(i) for i in 0..count at `rate` per second; a late timer catches up (each message is stamped when sent). */
function paced(count: number, rate: number, send: (i: number) => void, finished: () => void): void {
  const interval = 1000 / rate;
  const t0 = performance.now();
  let i = 0;
  const tick = (): void => {
    const t = performance.now();
    while (i < count && t0 + i * interval <= t) send(i++);
    if (i < count) setTimeout(tick, Math.max(0, t0 + i * interval - performance.now()));
    else finished();
  };
  tick();
}

async function client(flags: Flags): Promise<void> {
  const box = new CommandBox();
  childGuard(flagNumber(flags, 'limit', 120_000), box.handle);
  const transport = flagString(flags, 'transport');
  const kind = flagString(flags, 'case');
  const host = flagString(flags, 'host') ?? '127.0.0.1';
  const port = flagNumber(flags, 'port', 0);
  const count = flagNumber(flags, 'count', 0);
  const rate = flagNumber(flags, 'rate', 200);
  const size = flagNumber(flags, 'size', 1024);
  const blocks = Math.ceil(flagNumber(flags, 'total', 0) / MIB);
  startClock(flags, box);
  let startNs = 0n;
  let cpu0 = process.cpuUsage();
  let extra = (): Record<string, unknown> => ({});
  const begin = (): void => {
    startNs = now();
    cpu0 = process.cpuUsage();
    emit({ type: 'started', startNs: Number(startNs) });
  };
  const sent = (): void => emit({ type: 'sent', startNs: Number(startNs), endNs: Number(now()) });
  /** The i-th bulk block, fresh (a transport may hold it until acknowledged). */
  const block = (i: number): Buffer => Buffer.alloc(MIB, fillByte(i));

  /** Bulk over a byte stream: length-prefixed blocks, waiting for 'drain' when the stream says so. */
  const bulkOver = async (write: (b: Buffer) => boolean, drain: () => Promise<void>): Promise<void> => {
    begin();
    for (let i = 0; i < blocks; i++) {
      write(lengthPrefix(MIB));
      if (!write(block(i))) await drain();
    }
    sent();
  };

  if (transport === 'rudp') {
    let connection: Connection | undefined;
    const subscription = connect({ host, port }).subscribe({
      next: (conn) => {
        connection = conn;
        if (kind === 'stream') {
          begin();
          paced(count, rate, (i) => conn.send$.next(streamMessage(i, size, false)), sent);
        } else {
          begin();
          // range is lazy under mergeMap's concurrency: at most SEND_CONCURRENCY blocks exist at once.
          range(0, blocks)
            .pipe(mergeMap((i) => conn.send(block(i)), SEND_CONCURRENCY))
            .subscribe({ complete: sent, error: (e: Error) => emit({ type: 'error', message: `rudp send: ${e.message}` }) });
        }
      },
      error: (e: Error) => emit({ type: 'error', message: `rudp connect: ${e.message}` }),
    });
    extra = () => {
      const st = connection?.stats;
      return st === undefined
        ? {}
        : {
            packetsSent: st.packetsSent,
            bytesSent: st.bytesSent,
            dataPacketsSent: st.dataPacketsSent,
            retransmissions: st.retransmissions,
            repeatsAnswered: st.repeatsAnswered,
            redundantSends: st.redundantSends,
            rttMs: st.rtt,
            rtoMs: st.rto,
            congestionWindow: st.congestionWindow,
          };
    };
    void subscription;
  } else if (transport === 'tcp') {
    const socket = net.connect({ host, port });
    socket.setNoDelay(true);
    socket.on('error', (e) => emit({ type: 'error', message: `tcp: ${e.message}` }));
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    if (kind === 'stream') {
      begin();
      paced(count, rate, (i) => socket.write(streamMessage(i, size, true)), sent);
    } else {
      void bulkOver((b) => socket.write(b), () => new Promise((resolve) => socket.once('drain', resolve)));
    }
  } else if (transport === 'udx') {
    const u = loadUdx();
    const socket = u.createSocket();
    socket.bind(flagNumber(flags, 'self-port', 0), flagString(flags, 'self-host') ?? '0.0.0.0');
    socket.setRecvBufferSize(SOCKET_BUFFER);
    socket.setSendBufferSize(SOCKET_BUFFER);
    const stream = u.createStream(2);
    stream.connect(socket, 1, port, host);
    stream.on('error', (e) => emit({ type: 'error', message: `udx: ${e?.message ?? 'error'}` }));
    extra = () => ({ ...udxStats(stream), recvBuffer: socket.getRecvBufferSize(), sendBuffer: socket.getSendBufferSize() });
    if (kind === 'stream') {
      begin();
      paced(count, rate, (i) => stream.write(streamMessage(i, size, true)), sent);
    } else {
      void bulkOver((b) => stream.write(b), () => new Promise((resolve) => stream.once('drain', resolve)));
    }
  } else if (transport === 'udp') {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, resolve));
    socket.setSendBufferSize(SOCKET_BUFFER);
    let failed = 0;
    extra = () => ({ failed, sendBuffer: socket.getSendBufferSize() });
    begin();
    paced(count, rate, (i) => socket.send(streamMessage(i, size, false), port, host, (e) => void (e && failed++)), sent);
  } else {
    throw new Error(`unknown --transport ${transport}`);
  }

  // Stay connected until told: closing early could drop what is still unacknowledged.
  await box.next('exit');
  emit({ type: 'stats', cpuSeconds: cpuSeconds(cpu0).total, transportStats: extra() });
  process.exit(0);
}

const flags = parseFlags();
const role = flagString(flags, 'role');
if (role === 'server') void server(flags);
else if (role === 'client') void client(flags);
else throw new Error(`path-peer: unknown --role ${role}`);
