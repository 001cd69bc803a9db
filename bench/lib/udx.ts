/**
 * udx-native (a devDependency), typed as far as the benchmarks use it, and its ends for bench/bulk.ts: one stream each way of a socket pair on
 * loopback, carrying the bulk blocks as a byte stream, each 1 MiB block behind a 4-byte
 * little-endian length (as bench/path-peer.ts frames it). udx has no handshake: each end must
 * know the other's stream id and address before data flows, so the parent passes the sender's
 * port to the receiver ('peer') and starts the sender ('go') once the receiver has connected.
 *
 * Both sockets ask for the 4 MiB send and receive buffers rx-rudp's adapter asks for.
 * udx-native's retransmits and fastRecoveries are 16-bit counters (they wrap at 65536).
 */
import { cpuSeconds, fillByte } from './common';
import { monoMs } from './blast';
import { CommandBox, emit, type Message } from './proc';

const MIB = 1024 * 1024;

// ---- udx-native, typed as far as used ----------------------------------------------------------

export interface UdxSocket {
  bind(port: number, host: string): void;
  address(): { host: string; family: number; port: number };
  setRecvBufferSize(size: number): void;
  getRecvBufferSize(): number;
  setSendBufferSize(size: number): void;
  getSendBufferSize(): number;
  readonly packetsDroppedByKernel: number;
  readonly packetsReceived: number;
  readonly packetsTransmitted: number;
}
export interface UdxStream {
  connect(socket: UdxSocket, remoteId: number, port: number, host: string): void;
  write(chunk: Buffer): boolean;
  on(event: 'data', listener: (chunk: Buffer) => void): this;
  on(event: 'error' | 'close' | 'drain', listener: (error?: Error) => void): this;
  once(event: 'drain', listener: () => void): this;
  readonly mtu: number;
  readonly rtt: number;
  readonly cwnd: number;
  readonly retransmits: number;
  readonly rtoCount: number;
  readonly fastRecoveries: number;
  readonly packetsTransmitted: number;
  readonly bytesTransmitted: number;
  readonly packetsReceived: number;
  readonly bytesReceived: number;
}
export interface Udx {
  createSocket(): UdxSocket;
  createStream(id: number): UdxStream;
}

export function loadUdx(): Udx {
  // Loaded only by the processes of a udx mode or transport.
  const UDX = require('udx-native') as new () => Udx;
  return new UDX();
}

function version(): string | undefined {
  try {
    return (require('udx-native/package.json') as { version: string }).version;
  } catch {
    return undefined;
  }
}

/** A stream's counters (and its socket's kernel drops, given the socket). */
export function udxStats(s: UdxStream, socket?: UdxSocket): Record<string, number> {
  const stats: Record<string, number> = {
    mtu: s.mtu,
    rttMs: s.rtt,
    cwnd: s.cwnd,
    retransmits: s.retransmits, // 16-bit
    rtoCount: s.rtoCount, // 8-bit
    fastRecoveries: s.fastRecoveries, // 16-bit
    packetsTransmitted: s.packetsTransmitted,
    bytesTransmitted: s.bytesTransmitted,
    packetsReceived: s.packetsReceived,
    bytesReceived: s.bytesReceived,
  };
  if (socket !== undefined) stats['socketDroppedByKernel'] = socket.packetsDroppedByKernel;
  return stats;
}

function socketPair(host: string, socketBuffer: number): { u: Udx; socket: UdxSocket; info: Record<string, unknown> } {
  const u = loadUdx();
  const socket = u.createSocket();
  socket.bind(0, host);
  socket.setRecvBufferSize(socketBuffer);
  socket.setSendBufferSize(socketBuffer);
  return { u, socket, info: { port: socket.address().port, recvBuffer: socket.getRecvBufferSize(), sendBuffer: socket.getSendBufferSize(), udxVersion: version() } };
}

const RECEIVER_ID = 1;
const SENDER_ID = 2;

/**
 * The receiving end: verifies the length of every frame, its order, and one byte in `stride` of
 * it (plus its last byte) against fillByte(frame), and reports 'done' at the last byte.
 */
export async function udxReceiver(host: string, socketBuffer: number, total: number, stride: number, box: CommandBox): Promise<void> {
  const { u, socket, info } = socketPair(host, socketBuffer);
  const stream = u.createStream(RECEIVER_ID);
  const count = Math.ceil(total / MIB);
  let bytes = 0;
  let bad = 0;
  let frame = -1;
  let frameLength = 0;
  let offset = 0;
  let header = 0;
  let headerHave = 0;
  let cpu0: NodeJS.CpuUsage | undefined;
  let first = 0;
  let done = false;
  const frameDone = (): void => {
    if (frameLength !== MIB) bad++;
    if (frame + 1 === count && bytes >= total && !done) {
      done = true;
      const cpu = cpuSeconds(cpu0!);
      emit({ type: 'done', bytes, bad, frames: frame + 1, first, end: monoMs(), cpu: cpu.total, cpuUser: cpu.user, cpuSystem: cpu.system, rssMiB: process.memoryUsage().rss / MIB, ...udxStats(stream, socket), ...info });
    }
  };
  stream.on('data', (chunk: Buffer) => {
    if (cpu0 === undefined) {
      cpu0 = process.cpuUsage();
      first = monoMs();
    }
    let i = 0;
    while (i < chunk.length) {
      if (offset === frameLength && headerHave < 4) {
        // The 4-byte little-endian length, possibly split across chunks.
        header |= chunk[i++]! << (8 * headerHave);
        if (++headerHave < 4) continue;
        frame++;
        frameLength = header >>> 0;
        header = 0;
        offset = 0;
        if (frameLength === 0) {
          headerHave = 0;
          frameDone();
        }
        continue;
      }
      const take = Math.min(frameLength - offset, chunk.length - i);
      const b = fillByte(frame);
      // Sample positions are fixed within the frame (offset multiples of stride), whatever the chunking.
      const firstSample = Math.ceil(offset / stride) * stride;
      for (let p = firstSample; p < offset + take; p += stride) if (chunk[i + p - offset] !== b) bad++;
      offset += take;
      i += take;
      bytes += take;
      if (offset === frameLength) {
        if (chunk[i - 1] !== b) bad++;
        headerHave = 0;
        frameDone();
      }
    }
  });
  stream.on('error', (e) => emit({ type: 'error', message: `udx receiver: ${e?.message ?? 'stream error'}` }));
  emit({ type: 'ready', ...info });
  const peer = await box.next<Message & { port: number }>('peer');
  stream.connect(socket, SENDER_ID, peer.port, host);
  emit({ type: 'connected' });
}

/** The sending end: `total` bytes as length-prefixed 1 MiB blocks, waiting for 'drain' when write says so. */
export async function udxSender(host: string, port: number, socketBuffer: number, total: number, box: CommandBox): Promise<void> {
  const { u, socket, info } = socketPair(host, socketBuffer);
  const stream = u.createStream(SENDER_ID);
  stream.on('error', (e) => emit({ type: 'error', message: `udx sender: ${e?.message ?? 'stream error'}` }));
  stream.connect(socket, RECEIVER_ID, port, host);
  emit({ type: 'ready', ...info });
  await box.next('go');
  const count = Math.ceil(total / MIB);
  const cpu0 = process.cpuUsage();
  const start = monoMs();
  for (let i = 0; i < count; i++) {
    const prefix = Buffer.allocUnsafe(4);
    prefix.writeUInt32LE(MIB, 0);
    stream.write(prefix);
    // A fresh block each time: the stream holds it until acknowledged.
    if (!stream.write(Buffer.alloc(MIB, fillByte(i)))) await new Promise<void>((resolve) => stream.once('drain', resolve));
  }
  const cpu = cpuSeconds(cpu0);
  emit({ type: 'done', start, end: monoMs(), cpu: cpu.total, cpuUser: cpu.user, cpuSystem: cpu.system, rssMiB: process.memoryUsage().rss / MIB });
  // Stay: the last blocks may still be unacknowledged. Once the receiver has them all, the parent
  // asks for the stream's counters and this process's CPU from the first write until then.
  await box.next('stats');
  const whole = cpuSeconds(cpu0);
  emit({ type: 'stats', ...udxStats(stream, socket), cpu: whole.total, cpuUser: whole.user, cpuSystem: whole.system });
  await box.next('exit');
  process.exit(0);
}
