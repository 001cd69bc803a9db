/**
 * Plumbing for the hardening specs: virtual worlds in virtual time, raw packet-speaking peers,
 * sockets whose incoming side can be spoofed, a junk generator, the built library for child
 * processes, and a capture of errors that would otherwise surface as uncaught exceptions.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Observable, Subject, VirtualAction, VirtualTimeScheduler, config, map, type Subscription } from 'rxjs';
import { connectWithTestHooks, type ConnectOptions, type ConnectTestHooks } from '../../lib/api/connect';
import { listenWithTestHooks, type ListenOptions, type ListenTestHooks } from '../../lib/api/listen';
import type { Connection } from '../../lib/core/connection';
import type { EndpointStats } from '../../lib/core/endpoint';
import type { Datagram, DatagramSocket, SocketFactory } from '../../lib/core/transport';
import { decode, encode } from '../../lib/wire/codec';
import { isDecodeError, PacketType, type Packet } from '../../lib/wire/packet';
import { VirtualNetwork, type LinkImpairment } from '../../lib/testing/index';

export const ROOT = join(__dirname, '..', '..');
export const FIXTURES = join(__dirname, 'fixtures');

// ---------------------------------------------------------------------------------------------
// Errors that escape every handler (a throwing subscriber, an error with no error callback).

/**
 * Collects what rxjs would otherwise rethrow asynchronously as an uncaught exception (an error
 * thrown inside a `next` handler, an error notification nobody handles). Restore in afterEach.
 */
export function captureUnhandledErrors(): { readonly errors: unknown[]; restore(): void } {
  const previous = config.onUnhandledError;
  const errors: unknown[] = [];
  config.onUnhandledError = (error) => void errors.push(error);
  return { errors, restore: () => void (config.onUnhandledError = previous) };
}

// ---------------------------------------------------------------------------------------------
// Virtual worlds.

export interface World {
  readonly scheduler: VirtualTimeScheduler;
  readonly network: VirtualNetwork;
  /** Advances virtual time by `ms`, running everything due. */
  run(ms: number): void;
  /** Closes every subscription made through `keep`. */
  close(): void;
  keep(subscription: Subscription): Subscription;
}

/** More actions than this at one virtual instant is a livelock: the scheduler throws instead of hanging the test. */
const MAX_ACTIONS_PER_INSTANT = 100_000;

export function world(options: { seed?: number; default?: LinkImpairment; maxDatagramSize?: number } = {}): World {
  const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
  // A livelock (work rescheduling itself at the same instant forever) would hang jest in a
  // synchronous flush, beyond the reach of its timeout; fail it with a message instead.
  let instant = -1;
  let atInstant = 0;
  const schedule = scheduler.schedule.bind(scheduler);
  scheduler.schedule = ((work: never, delay?: number, state?: never) => {
    if (scheduler.now() !== instant) {
      instant = scheduler.now();
      atInstant = 0;
    }
    if (++atInstant > MAX_ACTIONS_PER_INSTANT) throw new Error(`livelock: more than ${MAX_ACTIONS_PER_INSTANT} actions scheduled at virtual time ${instant} ms`);
    return schedule(work, delay, state);
  }) as typeof scheduler.schedule;
  const network = new VirtualNetwork({ scheduler, ...options });
  const subscriptions: Subscription[] = [];
  return {
    scheduler,
    network,
    run: (ms) => {
      // A no-op action makes sure time moves even when nothing else is due.
      scheduler.schedule(() => undefined, ms);
      scheduler.maxFrames = scheduler.now() + ms;
      scheduler.flush();
    },
    keep: (s) => (subscriptions.push(s), s),
    close: () => {
      for (const s of subscriptions.splice(0).reverse()) s.unsubscribe();
    },
  };
}

/** A socket on the virtual network that speaks raw packets (or raw bytes). */
export interface RawPeer {
  readonly address: string;
  readonly port: number;
  /** Every datagram received, decoded (undefined entries: it was not a valid packet). */
  readonly received: Packet[];
  readonly receivedBytes: number[];
  send(packet: Packet | Uint8Array, toPort: number, toAddress: string): void;
}

export function rawPeer(w: World, host: string, port = 0, options: { record?: boolean } = {}): RawPeer {
  let socket: DatagramSocket | undefined;
  w.keep(w.network.socketFactory(host)({ type: 'udp4', port }).subscribe((s) => (socket = s)));
  const received: Packet[] = [];
  const receivedBytes: number[] = [];
  w.keep(
    socket!.datagrams$.subscribe((d: Datagram) => {
      if (options.record === false) return;
      const p = decode(d.data);
      receivedBytes.push(d.data.length);
      if (!isDecodeError(p)) received.push(p);
    }),
  );
  return {
    address: host,
    port: socket!.address().port,
    received,
    receivedBytes,
    send: (packet, toPort, toAddress) => socket!.send(packet instanceof Uint8Array ? packet : encode(packet), toPort, toAddress),
  };
}

/**
 * A socket factory whose sockets also deliver datagrams the test injects, with any source address
 * and port: an off-path attacker spoofing its source, as the receiving endpoint sees it.
 */
export function spoofable(
  factory: SocketFactory,
  /** Datagrams sent to these addresses are counted here instead of being sent (spoofed sources that do not exist). */
  divert?: (address: string) => boolean,
): { factory: SocketFactory; inject(data: Uint8Array, address: string, port: number): void; readonly local: () => { address: string; port: number }; readonly diverted: { datagrams: number; bytes: number } } {
  const diverted = { datagrams: 0, bytes: 0 };
  const injected = new Subject<Datagram>();
  let bound: DatagramSocket | undefined;
  const wrapped: SocketFactory = (options) =>
    factory(options).pipe(
      map((socket): DatagramSocket => {
        bound = socket;
        const datagrams$ = new Observable<Datagram>((subscriber) => {
          const a = socket.datagrams$.subscribe(subscriber);
          const b = injected.subscribe((d) => subscriber.next(d));
          return () => {
            a.unsubscribe();
            b.unsubscribe();
          };
        });
        const send = (data: Uint8Array, port: number, address: string, onError?: (error: Error) => void): void => {
          if (divert?.(address)) {
            diverted.datagrams++;
            diverted.bytes += data.length;
          } else socket.send(data, port, address, onError);
        };
        return { datagrams$, send, address: () => socket.address() };
      }),
    );
  return {
    factory: wrapped,
    inject: (data, address, port) => injected.next({ data: new Uint8Array(data), address, port }),
    local: () => bound!.address(),
    diverted,
  };
}

/** A valid CONNECT datagram of `length` (>= 64) bytes. */
export const connectPacket = (connectionId: number, nonce = 1, length = 64): Buffer => {
  const bytes = Buffer.alloc(Math.max(64, length));
  bytes.set(encode({ type: PacketType.Connect, connectionId, maxDatagramSize: 1200, receiveWindow: 64, nonce }));
  return bytes;
};

// ---------------------------------------------------------------------------------------------
// Junk: random bytes and mutated valid packets.

/** A small seeded PRNG (mulberry32), with random bytes cut from a seeded 1 MiB pool (fast). */
export function rng(seed: number): { next(): number; int(min: number, max: number): number; pick<T>(items: readonly T[]): T; bytes(n: number): Buffer } {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (min: number, max: number): number => min + Math.floor(next() * (max - min + 1));
  let pool: Buffer | undefined;
  return {
    next,
    int,
    pick: (items) => items[int(0, items.length - 1)]!,
    bytes: (n) => {
      if (pool === undefined) {
        pool = Buffer.allocUnsafe(1 << 20);
        for (let i = 0; i < pool.length; i += 4) pool.writeUInt32LE(Math.floor(next() * 4294967296), i);
      }
      const at = int(0, pool.length - n);
      return Buffer.from(pool.subarray(at, at + n));
    },
  };
}

export type Rng = ReturnType<typeof rng>;

/** What a junk datagram must be to the receiver: invalid by PROTOCOL.md §1–§9, or a valid packet (from a stranger). */
export type JunkKind = 'invalid' | 'valid' | 'either';

export interface Junk {
  readonly data: Buffer;
  readonly kind: JunkKind;
  readonly label: string;
}

const u32 = (r: Rng): number => r.int(0, 0xffffffff);
const nonZeroId = (r: Rng): number => r.int(1, 0xffffffff);

/** A valid packet of any type but CONNECT, with connection id `id`. */
export function validPacket(r: Rng, id: number): Packet {
  const ranges = (n: number, from: number) => {
    const out: { start: number; end: number }[] = [];
    let at = from;
    for (let i = 0; i < n; i++) {
      const start = (at + r.int(1, 5)) >>> 0;
      const end = (start + r.int(0, 5)) >>> 0;
      out.push({ start, end });
      at = (end + 1) >>> 0;
    }
    return out;
  };
  switch (r.int(0, 7)) {
    case 0: {
      const count = r.int(1, 65535);
      return { type: PacketType.Data, connectionId: id, seq: u32(r), batch: u32(r), index: r.int(0, count - 1), count, payload: r.bytes(r.int(1, 1182)) };
    }
    case 1: {
      const cumulative = u32(r);
      return { type: PacketType.DataAck, connectionId: id, cumulative, window: r.int(0, 65535), ranges: ranges(r.int(0, 32), cumulative) };
    }
    case 2:
      return { type: PacketType.Repeat, connectionId: id, ranges: ranges(r.int(1, 32), u32(r)) };
    case 3:
      return { type: PacketType.Ping, connectionId: id, nonce: u32(r) };
    case 4:
      return { type: PacketType.PingAck, connectionId: id, nonce: u32(r) };
    case 5:
      return { type: PacketType.Close, connectionId: id, reason: r.int(0, 255), text: 'x'.repeat(r.int(0, 123)) };
    case 6:
      return { type: PacketType.Direct, connectionId: id, payload: r.bytes(r.int(0, 1194)) };
    default:
      return { type: PacketType.ConnectAck, connectionId: id, maxDatagramSize: r.int(576, 65507), receiveWindow: r.int(1, 65535), nonce: u32(r) };
  }
}

function withByte(data: Buffer, offset: number, value: number): Buffer {
  const copy = Buffer.from(data);
  copy[offset] = value;
  return copy;
}

/**
 * One junk datagram: random bytes, or a packet with one thing wrong (every field out of range,
 * truncated, wrong version, unknown type, id 0, too many ranges, ranges out of order, index >= count,
 * bad lengths, bad CLOSE text, too long), or a valid packet (a stranger's: any id, including `liveIds`,
 * and DATA whose count changes within a batch). Never a valid CONNECT (that is the flood spec's business).
 * `maxDatagramSize` is the receiver's.
 */
export function junk(r: Rng, liveIds: readonly number[], maxDatagramSize = 1200): Junk {
  for (;;) {
    const j = junkOnce(r, liveIds, maxDatagramSize);
    // Random bytes and bit flips can make a valid CONNECT (rarely): those open connections.
    if (j.kind === 'invalid' || classify(j.data, maxDatagramSize) !== 'connect') return j;
  }
}

function junkOnce(r: Rng, liveIds: readonly number[], maxDatagramSize: number): Junk {
  const id = r.next() < 0.5 && liveIds.length > 0 ? r.pick(liveIds) : nonZeroId(r);
  const base = (): Buffer => encode(validPacket(r, id));
  const header = (type: number, bodyLength: number): Buffer => {
    const b = Buffer.alloc(6 + bodyLength);
    b[0] = 1;
    b[1] = type;
    b.writeUInt32BE(id, 2);
    return b;
  };
  const rangesBytes = (b: Buffer, at: number, ranges: [number, number][]) => {
    for (const [s, e] of ranges) {
      b.writeUInt32BE(s >>> 0, at);
      b.writeUInt32BE(e >>> 0, at + 4);
      at += 8;
    }
  };
  switch (r.int(0, 22)) {
    case 0:
      return { data: r.bytes(r.int(0, 1500)), kind: 'either', label: 'random bytes' };
    case 1:
      return { data: r.bytes(r.int(0, 5)), kind: 'invalid', label: 'shorter than the header' };
    case 2: {
      const b = base();
      return { data: withByte(b, 0, r.pick([0, 2, 3, 0x7f, 0x80, 0xff])), kind: 'invalid', label: 'wrong version' };
    }
    case 3: {
      const b = base();
      // Not 0x10..0x1f: the registry's extension types (docs/protocol.md §13), which the codec reads
      // (a connection that did not negotiate them drops and counts them).
      return { data: withByte(b, 1, r.pick([0, 10, 11, 0x0f, 0x7f, 0xff, r.int(0x20, 255)])), kind: 'invalid', label: 'unknown type' };
    }
    case 4: {
      const b = base();
      b.writeUInt32BE(0, 2);
      return { data: b, kind: 'invalid', label: 'connection id 0' };
    }
    case 5: {
      // A fixed-length packet, truncated or extended.
      const type = r.pick([PacketType.ConnectAck, PacketType.Ping, PacketType.PingAck]);
      const good = type === PacketType.ConnectAck ? 14 : 10;
      let length = r.int(6, 64);
      if (length === good) length++;
      const b = header(type, length - 6);
      if (type === PacketType.ConnectAck && b.length >= 10) b.writeUInt16BE(1200, 6), b.writeUInt16BE(64, 8);
      return { data: b, kind: 'invalid', label: 'fixed-length packet of the wrong length' };
    }
    case 6: {
      // CONNECT shorter than 64 bytes (otherwise valid).
      const b = header(PacketType.Connect, r.int(0, 57));
      if (b.length >= 10) b.writeUInt16BE(1200, 6), b.writeUInt16BE(64, 8);
      return { data: b, kind: 'invalid', label: 'CONNECT under 64 bytes' };
    }
    case 7: {
      // CONNECT / CONNECT_ACK with a field out of range.
      const type = r.pick([PacketType.Connect, PacketType.ConnectAck]);
      const b = header(type, type === PacketType.Connect ? 58 : 8);
      const badSize = r.next() < 0.5;
      b.writeUInt16BE(badSize ? r.pick([0, 1, 575, r.int(0, 575), r.int(65508, 65535)]) : r.int(576, 65507), 6);
      b.writeUInt16BE(badSize ? r.int(0, 65535) : 0, 8);
      return { data: b, kind: 'invalid', label: 'CONNECT(_ACK) field out of range' };
    }
    case 8: {
      // DATA: index >= count.
      const b = header(PacketType.Data, 12 + r.int(1, 100));
      const count = r.int(1, 65535);
      b.writeUInt32BE(u32(r), 6);
      b.writeUInt32BE(u32(r), 10);
      b.writeUInt16BE(r.int(count, 65535), 14);
      b.writeUInt16BE(count, 16);
      return { data: b, kind: 'invalid', label: 'DATA index >= count' };
    }
    case 9: {
      // DATA: count 0.
      const b = header(PacketType.Data, 12 + r.int(0, 100));
      b.writeUInt16BE(r.int(0, 65535), 14);
      b.writeUInt16BE(0, 16);
      return { data: b, kind: 'invalid', label: 'DATA count 0' };
    }
    case 10: {
      // DATA: empty payload in a batch of more than one packet; or a DATA header cut short.
      if (r.next() < 0.5) {
        const b = header(PacketType.Data, 12);
        const count = r.int(2, 65535);
        b.writeUInt16BE(r.int(0, count - 1), 14);
        b.writeUInt16BE(count, 16);
        return { data: b, kind: 'invalid', label: 'DATA empty payload, count > 1' };
      }
      return { data: header(PacketType.Data, r.int(0, 11)), kind: 'invalid', label: 'DATA shorter than its header' };
    }
    case 11: {
      // DATA_ACK with more than 32 ranges (length consistent), or REPEAT with 0 or more than 32.
      if (r.next() < 0.5) {
        const n = r.int(33, Math.floor((maxDatagramSize - 13) / 8));
        const b = header(PacketType.DataAck, 7 + 8 * n);
        b.writeUInt32BE(0, 6);
        b[12] = n;
        rangesBytes(b, 13, Array.from({ length: n }, (_, i) => [10 * i + 1, 10 * i + 2] as [number, number]));
        return { data: b, kind: 'invalid', label: 'DATA_ACK with too many ranges' };
      }
      const n = r.pick([0, r.int(33, Math.floor((maxDatagramSize - 7) / 8))]);
      const b = header(PacketType.Repeat, 1 + 8 * n);
      b[6] = n;
      rangesBytes(b, 7, Array.from({ length: n }, (_, i) => [10 * i + 1, 10 * i + 2] as [number, number]));
      return { data: b, kind: 'invalid', label: 'REPEAT with 0 or too many ranges' };
    }
    case 12: {
      // DATA_ACK / REPEAT whose rangeCount disagrees with its length.
      const isAck = r.next() < 0.5;
      const n = r.int(0, 32);
      let m = r.int(0, 40);
      if (m === n) m++;
      const b = header(isAck ? PacketType.DataAck : PacketType.Repeat, (isAck ? 7 : 1) + 8 * m + (r.next() < 0.3 ? r.int(1, 7) : 0));
      b[isAck ? 12 : 6] = n;
      return { data: b, kind: 'invalid', label: 'rangeCount disagrees with length' };
    }
    case 13: {
      // Ranges out of order, overlapping, touching, reversed, or (DATA_ACK) not after cumulative.
      const isAck = r.next() < 0.5;
      const n = r.int(2, 8);
      const cumulative = u32(r);
      const good: [number, number][] = [];
      let at = cumulative;
      for (let i = 0; i < n; i++) {
        const s = (at + r.int(2, 50)) >>> 0;
        const e = (s + r.int(0, 10)) >>> 0;
        good.push([s, e]);
        at = e;
      }
      const which = r.int(0, isAck ? 4 : 3);
      const i = r.int(1, n - 1);
      const bad = good.map((x) => [...x] as [number, number]);
      if (which === 0) [bad[i - 1], bad[i]] = [bad[i]!, bad[i - 1]!]; // out of order
      else if (which === 1) bad[i]![0] = bad[i - 1]![1]; // overlapping
      else if (which === 2) bad[i]![0] = (bad[i - 1]![1] + 1) >>> 0; // touching
      else if (which === 3) bad[i]![1] = (bad[i]![0] - r.int(1, 10)) >>> 0; // end before start
      else bad[0]![0] = r.pick([cumulative, (cumulative - r.int(1, 1000)) >>> 0]); // not after cumulative
      const b = header(isAck ? PacketType.DataAck : PacketType.Repeat, (isAck ? 7 : 1) + 8 * n);
      if (isAck) {
        b.writeUInt32BE(cumulative, 6);
        b.writeUInt16BE(r.int(0, 65535), 10);
        b[12] = n;
        rangesBytes(b, 13, bad);
      } else {
        b[6] = n;
        rangesBytes(b, 7, bad);
      }
      return { data: b, kind: 'invalid', label: 'ranges out of order / overlapping / reversed' };
    }
    case 14: {
      // CLOSE with text beyond 123 bytes, with invalid UTF-8, or shorter than 7 bytes.
      const which = r.int(0, 2);
      if (which === 0) {
        const b = header(PacketType.Close, 1 + r.int(124, 400));
        b.fill(0x61, 7);
        return { data: b, kind: 'invalid', label: 'CLOSE text too long' };
      }
      if (which === 1) {
        const b = header(PacketType.Close, 1 + r.int(1, 20));
        b[7] = r.pick([0x80, 0xc0, 0xff, 0xfe, 0xed]);
        return { data: b, kind: 'invalid', label: 'CLOSE text not UTF-8' };
      }
      return { data: header(PacketType.Close, 0), kind: 'invalid', label: 'CLOSE without reason' };
    }
    case 15: {
      // Longer than the receiver's maxDatagramSize (any content, here a valid-looking DIRECT or DATA).
      const b = header(r.pick([PacketType.Direct, PacketType.Data]), r.int(maxDatagramSize - 5, 1472 - 6));
      if (b[1] === PacketType.Data) b.writeUInt16BE(1, 16);
      return { data: b, kind: 'invalid', label: 'longer than maxDatagramSize' };
    }
    case 16: {
      // A valid packet truncated at a random point.
      const b = base();
      return { data: b.subarray(0, r.int(0, b.length - 1)), kind: 'either', label: 'truncated packet' };
    }
    case 17: {
      // Random bit flips in a valid packet.
      const b = Buffer.from(base());
      for (let k = r.int(1, 4); k > 0; k--) b[r.int(0, b.length - 1)]! ^= 1 << r.int(0, 7);
      return { data: b, kind: 'either', label: 'bit flips' };
    }
    case 18:
    case 19: {
      // DATA whose count changes within a batch: index 0 says one count, index 1 another.
      const batch = u32(r);
      const seq = u32(r);
      const count = r.int(2, 1000);
      const half = r.next() < 0.5;
      const p: Packet = { type: PacketType.Data, connectionId: id, seq: half ? seq : (seq + 1) >>> 0, batch, index: half ? 0 : 1, count: half ? count : count + r.int(1, 100), payload: r.bytes(r.int(1, 1182)) };
      return { data: encode(p), kind: 'valid', label: 'DATA, count changing within a batch' };
    }
    default:
      return { data: base(), kind: 'valid', label: 'valid packet of a stranger' };
  }
}

/** Is this datagram a valid packet for a receiver with `maxDatagramSize`, and is it a CONNECT? */
export function classify(data: Uint8Array, maxDatagramSize = 1200): 'invalid' | 'connect' | 'valid' {
  const p = decode(data, maxDatagramSize);
  if (isDecodeError(p)) return 'invalid';
  return p.type === PacketType.Connect ? 'connect' : 'valid';
}

// ---------------------------------------------------------------------------------------------
// Child processes on the built library.

/** Builds dist/ unless it is newer than every file of lib/ (one build per jest run, not per spec). */
export function ensureBuilt(): void {
  const distIndex = join(ROOT, 'dist', 'index.js');
  const newestLib = newestMtime(join(ROOT, 'lib'));
  if (existsSync(distIndex) && statSync(distIndex).mtimeMs > newestLib) return;
  const startedAt = Date.now();
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, timeout: 120_000, stdio: 'pipe' });
  } catch (error) {
    // tsc still emits when some file (maybe one being edited by someone else) has a type error.
    const emitted = existsSync(distIndex) && statSync(distIndex).mtimeMs >= startedAt - 1000;
    if (!emitted) throw error;
    const out = (error as { stdout?: Buffer }).stdout?.toString() ?? '';
    console.warn(`tsc reported errors but emitted dist/:\n${out.slice(0, 2000)}`);
  }
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    const t = entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs;
    if (t > newest) newest = t;
  }
  return newest;
}

/** A child Node process that prints one JSON object per stdout line. */
export class Child {
  readonly proc: ChildProcess;
  readonly lines: Record<string, unknown>[] = [];
  readonly stderr: string[] = [];
  /** Resolves with the exit code (or the signal name) once the process exited and its pipes closed. */
  readonly exited: Promise<number | string>;
  private readonly waiters: { match: (line: Record<string, unknown>) => boolean; resolve: (line: Record<string, unknown>) => void }[] = [];

  constructor(script: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; nodeArgs?: readonly string[] } = {}) {
    this.proc = spawn(process.execPath, [...(options.nodeArgs ?? []), script, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
    this.exited = new Promise((resolve) => this.proc.once('close', (code, signal) => resolve(code ?? signal ?? -1)));
    createInterface({ input: this.proc.stdout! }).on('line', (text) => {
      let line: Record<string, unknown>;
      try {
        line = JSON.parse(text) as Record<string, unknown>;
      } catch {
        line = { text };
      }
      this.lines.push(line);
      for (let i = this.waiters.length - 1; i >= 0; i--) {
        const w = this.waiters[i]!;
        if (w.match(line)) {
          this.waiters.splice(i, 1);
          w.resolve(line);
        }
      }
    });
    createInterface({ input: this.proc.stderr! }).on('line', (text) => void this.stderr.push(text));
  }

  /** The first line (already printed or to come) for which `match` holds. */
  waitFor(match: (line: Record<string, unknown>) => boolean, ms: number, label: string): Promise<Record<string, unknown>> {
    const found = this.lines.find(match);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${label}; stderr: ${this.stderr.join('\n').slice(0, 2000)}`)), ms);
      const exited = (): void => {
        clearTimeout(timer);
        reject(new Error(`child exited while waiting for ${label}; stderr: ${this.stderr.join('\n').slice(0, 2000)}`));
      };
      this.proc.once('close', exited);
      this.waiters.push({
        match,
        resolve: (line) => {
          clearTimeout(timer);
          this.proc.off('close', exited);
          resolve(line);
        },
      });
    });
  }

  send(message: unknown): void {
    this.proc.stdin!.write(JSON.stringify(message) + '\n');
  }

  /** SIGKILL unless already gone; resolves once it is. */
  async kill(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    await this.exited;
  }
}

// ---------------------------------------------------------------------------------------------
// Memory.

let gcFunction: (() => void) | undefined;

/** A full garbage collection (exposes V8's gc on first use). */
export function gc(): void {
  if (gcFunction === undefined) {
    setFlagsFromString('--expose-gc');
    gcFunction = runInNewContext('gc') as () => void;
  }
  gcFunction();
  gcFunction();
}

export const MiB = 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// A listener and a starter on a virtual network, exchanging messages both ways.


export const digest = (m: Uint8Array): string => createHash('sha256').update(m).digest('hex').slice(0, 16);

/** Messages whose bytes depend on (tag, index): a swap or a mix-up cannot go unseen. */
export function messages(count: number, tag: number, maxSize: number, seed = tag): Buffer[] {
  const r = rng(seed);
  return Array.from({ length: count }, (_, i) => {
    const size = Math.floor(2 ** (r.next() * Math.log2(maxSize + 1))) - 1;
    const m = Buffer.alloc(size);
    for (let j = 0; j < size; j++) m[j] = (j * 31 + i * 7 + tag) & 0xff;
    return m;
  });
}

export interface Side {
  conn: Connection | undefined;
  readonly received: string[];
  readonly direct: number[];
  ended: string | undefined;
}

export interface Pair {
  readonly server: Side;
  readonly client: Side;
  /** The listener's endpoint counters. */
  readonly stats: () => EndpointStats;
  readonly accepted: Connection[];
  readonly errors: unknown[];
}

export const LISTENER_HOST = '10.0.0.2';
export const LISTENER_PORT = 5000;
export const STARTER_HOST = '10.0.0.1';

/**
 * A listener at 10.0.0.2:5000 and a starter from 10.0.0.1 on `w`; each side sends its messages
 * as soon as the connection opens, and records digests of what arrives.
 */
export function virtualPair(
  w: World,
  options: {
    toServer?: readonly Buffer[];
    toClient?: readonly Buffer[];
    protocol?: Omit<ListenOptions, 'host' | 'port' | 'socketFactory' | 'scheduler' | 'onListening'>;
    listenFactory?: SocketFactory;
    connectFactory?: SocketFactory;
    listenHooks?: ListenTestHooks;
    connectHooks?: ConnectTestHooks;
    connect?: Partial<ConnectOptions>;
  } = {},
): Pair {
  const errors: unknown[] = [];
  const side = (): Side => ({ conn: undefined, received: [], direct: [], ended: undefined });
  const server = side();
  const client = side();
  const accepted: Connection[] = [];
  let stats: EndpointStats | undefined;
  const attach = (s: Side, c: Connection, outgoing: readonly Buffer[]): void => {
    s.conn = c;
    c.messages$.subscribe({
      next: (m) => void s.received.push(digest(m)),
      error: (e: Error) => void (s.ended = `${e.name}: ${e.message}`),
      complete: () => void (s.ended = 'completed'),
    });
    c.direct$.subscribe((d) => void s.direct.push(d.length));
    for (const m of outgoing) c.send$.next(m);
  };
  w.keep(
    listenWithTestHooks(
      {
        ...options.protocol,
        host: LISTENER_HOST,
        port: LISTENER_PORT,
        scheduler: w.scheduler,
        socketFactory: options.listenFactory ?? w.network.socketFactory(LISTENER_HOST),
        onListening: (_, s) => void (stats = s),
      },
      options.listenHooks ?? {},
    ).subscribe({
      next: (c) => {
        accepted.push(c);
        if (server.conn === undefined) attach(server, c, options.toClient ?? []);
        else c.messages$.subscribe({ error: () => undefined });
      },
      error: (e) => void errors.push(e),
    }),
  );
  // The listener's own options (maxConnections, maxMemory, secure, authorize) are no starter's business.
  const { maxConnections: _c, maxMemory: _m, secure: _k, authorize: _a, ...shared } = { ...options.protocol };
  const { scheduler: _s, socketFactory: _f, ...protocol } = shared as Partial<ConnectOptions>;
  w.keep(
    connectWithTestHooks(
      {
        ...protocol,
        ...options.connect,
        host: LISTENER_HOST,
        port: LISTENER_PORT,
        scheduler: w.scheduler,
        socketFactory: options.connectFactory ?? w.network.socketFactory(STARTER_HOST),
      },
      options.connectHooks ?? {},
    ).subscribe({ next: (c) => attach(client, c, options.toServer ?? []), error: (e) => void errors.push(e) }),
  );
  return { server, client, stats: () => stats!, accepted, errors };
}

// ---------------------------------------------------------------------------------------------
// Impairment of real sockets: the send side drops and delays (reorders) datagrams.

/**
 * Wraps a socket factory so that each datagram sent is dropped with probability `loss`, or held
 * back `delayMs` (so later ones overtake it) with probability `reorder`. Seeded. Real timers.
 */
export function impaired(factory: SocketFactory, options: { loss: number; reorder: number; delayMs: number; seed: number }): SocketFactory {
  const r = rng(options.seed);
  return (bind) =>
    factory(bind).pipe(
      map((socket): DatagramSocket => ({
        datagrams$: socket.datagrams$,
        address: () => socket.address(),
        send: (data, port, address, onError) => {
          const u = r.next();
          if (u < options.loss) return;
          if (u < options.loss + options.reorder) {
            const copy = Buffer.from(data);
            setTimeout(() => socket.send(copy, port, address, onError), options.delayMs);
            return;
          }
          socket.send(data, port, address, onError);
        },
      })),
    );
}

/** Wraps a factory to watch every datagram sent (decoded). */
export function watched(factory: SocketFactory, onPacket: (p: Packet) => void): SocketFactory {
  return (bind) =>
    factory(bind).pipe(
      map((socket): DatagramSocket => ({
        datagrams$: socket.datagrams$,
        address: () => socket.address(),
        send: (data, port, address, onError) => {
          const p = decode(data);
          if (!isDecodeError(p)) onPacket(p);
          socket.send(data, port, address, onError);
        },
      })),
    );
}
