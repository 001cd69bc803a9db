/**
 * Bulk transfer on loopback, sender and receiver in separate processes, everything measured in
 * the same run: rx-rudp (default 1200-byte datagrams, and raised datagram sizes) vs Node `net`
 * TCP vs udx-native (one stream) vs the ceiling: a paced one-way `node:dgram` blast at the
 * highest rate the receiver takes with < 0.1 % drops, found by a short search at the start of the
 * run (doubling, then bisecting), then sent as a transfer of the same size as the others.
 *
 *   node bench/dist/bench/bulk.js [--quick] [--runs 5] [--mib 256]
 *     [--modes paced,paced-16k,paced-64k,tcp,udx,rudp,rudp-1200,rudp-16k,rudp-64k]   (defaults)
 *     also: dgram, dgram-16k, dgram-64k (unpaced floods), rudp-secure, rudp-secure-64k
 *     [--trial-ms 1000] [--search-trials 8] [--budget S] [--run-limit MS]
 */
import * as net from 'node:net';
import * as os from 'node:os';
import { EMPTY, concat, defer, ignoreElements, mergeMap, range, switchMap } from 'rxjs';
import { DEFAULTS, connect, listen, type Connection } from '../lib/index';
import { privateKeyFrom } from '../lib/core/secure/keys';
import { benchMain, cpuSeconds, fillByte, flagNumber, flagString, table, udpCounters, type BenchResult, type Flags } from './lib/common';
import {
  blastReceiver,
  blastSender,
  monoMs,
  socketBufferLimits,
  udpSocketDrops,
  type BlastCollected,
  type BlastReady,
  type BlastSent,
} from './lib/blast';
import { Child, CommandBox, childGuard, emit, sleep, type Message } from './lib/proc';
import { fmt, median } from './lib/stats';
import { udxReceiver, udxSender } from './lib/udx';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
const HOST = '127.0.0.1';
const SOCKET_BUFFER = 4 * MIB; // what the rx-rudp adapter asks for (send and receive); the blast and udx sockets ask the same
const SEND_CONCURRENCY = 32; // messages in flight from the rx-rudp sender (mergeMap concurrency)
const SAMPLE_STRIDE = 1021; // verify one byte in every 1021 (hits every packet of every size used)
/** A blast trial passes below this fraction of datagrams lost. */
const DROP_LIMIT_PERCENT = 0.1;
/** A passing trial that sent below this fraction of its target rate: the sender is the limit, asking more gives nothing. */
const SENDER_LIMITED = 0.9;
/** Bisection ends when the failing rate is within this factor of the passing one. */
const BISECT_STOP = 1.1;

type Kind = 'paced' | 'flood' | 'tcp' | 'udx' | 'rudp';

interface ModeSpec {
  readonly label: string;
  readonly kind: Kind;
  readonly maxDatagramSize?: number;
  readonly receiveWindow?: number;
  /** rx-rudp's path-MTU probing; default its default ('auto'). */
  readonly pathMtu?: 'off';
  /** paced / flood: datagram payload size. */
  readonly payload?: number;
  /** The paced mode whose goodput is this mode's ceiling. */
  readonly ceiling: string;
  /** rx-rudp with the secure extension (every packet sealed). */
  readonly secure?: boolean;
}

/** A fixed key for the secure modes: both child processes must know it, and nothing here is secret. */
const BENCH_PRIVATE_KEY = Buffer.alloc(32, 7).toString('base64');
const benchPublicKey = (): Buffer => privateKeyFrom('bench', BENCH_PRIVATE_KEY).publicKey;

const MODES: Record<string, ModeSpec> = {
  paced: { label: 'paced blast, 1200 B (ceiling)', kind: 'paced', payload: 1200, ceiling: 'paced' },
  'paced-16k': { label: 'paced blast, 16384 B (ceiling)', kind: 'paced', payload: 16384, ceiling: 'paced-16k' },
  'paced-64k': { label: 'paced blast, 65507 B (ceiling)', kind: 'paced', payload: 65507, ceiling: 'paced-64k' },
  dgram: { label: 'flood: unpaced blast, 1200 B (not a ceiling)', kind: 'flood', payload: 1200, ceiling: 'paced' },
  'dgram-16k': { label: 'flood: unpaced blast, 16384 B (not a ceiling)', kind: 'flood', payload: 16384, ceiling: 'paced-16k' },
  'dgram-64k': { label: 'flood: unpaced blast, 65507 B (not a ceiling)', kind: 'flood', payload: 65507, ceiling: 'paced-64k' },
  tcp: { label: 'node:net TCP', kind: 'tcp', ceiling: 'paced' },
  udx: { label: 'udx-native, one stream', kind: 'udx', ceiling: 'paced' },
  rudp: { label: `rx-rudp, defaults (path-MTU probing from 1200 B, window ${DEFAULTS.receiveWindow})`, kind: 'rudp', ceiling: 'paced-64k' },
  'rudp-1200': { label: `rx-rudp, 1200 B datagrams (pathMtu 'off'), window ${DEFAULTS.receiveWindow}`, kind: 'rudp', pathMtu: 'off', ceiling: 'paced' },
  'rudp-16k': { label: 'rx-rudp, 16384 B datagrams, window 256', kind: 'rudp', maxDatagramSize: 16384, receiveWindow: 256, ceiling: 'paced-16k' },
  'rudp-64k': { label: 'rx-rudp, 65507 B datagrams, window 64', kind: 'rudp', maxDatagramSize: 65507, receiveWindow: 64, ceiling: 'paced-64k' },
  'rudp-secure': { label: `rx-rudp, secure (sealed), defaults, window ${DEFAULTS.receiveWindow}`, kind: 'rudp', ceiling: 'paced-64k', secure: true },
  'rudp-secure-64k': { label: 'rx-rudp, secure (sealed), 65507 B, window 64', kind: 'rudp', maxDatagramSize: 65507, receiveWindow: 64, ceiling: 'paced-64k', secure: true },
};
const DEFAULT_MODES = ['paced', 'paced-16k', 'paced-64k', 'tcp', 'udx', 'rudp', 'rudp-1200', 'rudp-16k', 'rudp-64k'];
/** Where the ceiling search starts, MB/s, per datagram size. */
const SEARCH_START: Record<number, number> = { 1200: 64, 16384: 256, 65507: 256 };

interface SideReport {
  readonly cpu: number; // seconds, user + system, over the transfer
  readonly cpuUser: number;
  readonly cpuSystem: number;
  readonly rssMiB?: number;
}
type Side = SideReport & Record<string, unknown>;

interface RunOutcome {
  readonly mode: string;
  readonly ok: boolean;
  readonly error?: string;
  readonly bytes: number; // verified bytes received
  readonly seconds: number; // sender's first write → last byte at the receiver
  readonly goodputMBs: number;
  readonly sender?: Side;
  readonly receiver?: Side;
  /** paced / flood: datagrams sent and not received, % of those sent. */
  readonly lossPercent?: number;
  /** paced / flood: the rate the sender was asked for (MB/s; undefined for a flood) and reached. */
  readonly targetMBs?: number;
  readonly sendRateMBs?: number;
  /** Kernel drops counted on this run's own UDP sockets (/proc/net/udp), read as the transfer ended. */
  readonly socketDrops?: number;
  /** System-wide UDP receive-buffer overflows during the run (/proc/net/snmp RcvbufErrors delta): other traffic counts too. */
  readonly systemDrops?: number;
}

// ---- sub-process roles -------------------------------------------------------------------------

function spec(flags: Flags): ModeSpec {
  const mode = flagString(flags, 'mode') ?? '';
  const s = MODES[mode];
  if (s === undefined) throw new Error(`unknown --mode ${mode}`);
  return s;
}

function side(cpu0: NodeJS.CpuUsage): SideReport {
  const cpu = cpuSeconds(cpu0);
  return { cpu: cpu.total, cpuUser: cpu.user, cpuSystem: cpu.system, rssMiB: process.memoryUsage().rss / MIB };
}

/** A fresh 1 MiB message (the library may hold it until acknowledged, so never reused). */
function block(index: number): Buffer {
  return Buffer.alloc(MIB, fillByte(index));
}

async function receiver(flags: Flags): Promise<void> {
  const box = new CommandBox();
  childGuard(flagNumber(flags, 'limit', 120_000), box.handle);
  const s = spec(flags);
  const total = flagNumber(flags, 'total', 0);
  if (s.kind === 'paced' || s.kind === 'flood') return blastReceiver(HOST, SOCKET_BUFFER, box);
  if (s.kind === 'udx') return udxReceiver(HOST, SOCKET_BUFFER, total, SAMPLE_STRIDE, box);
  let bytes = 0;
  let bad = 0;
  let cpu0 = process.cpuUsage();
  let started = false;
  let finished = false;
  const start = (): void => {
    if (started) return;
    started = true;
    cpu0 = process.cpuUsage();
  };
  const finish = (extra: Record<string, unknown>): void => {
    if (finished) return;
    finished = true;
    emit({ type: 'done', bytes, bad, end: monoMs(), ...side(cpu0), ...extra });
  };

  if (s.kind === 'tcp') {
    const server = net.createServer((socket) => {
      start();
      let position = 0;
      socket.on('data', (chunk: Buffer) => {
        for (let j = (SAMPLE_STRIDE - (position % SAMPLE_STRIDE)) % SAMPLE_STRIDE; j < chunk.length; j += SAMPLE_STRIDE) {
          if (chunk[j] !== fillByte(Math.floor((position + j) / MIB))) bad++;
        }
        const lastIndex = chunk.length - 1;
        if (chunk[lastIndex] !== fillByte(Math.floor((position + lastIndex) / MIB))) bad++;
        position += chunk.length;
        bytes = position;
        if (bytes >= total) finish({});
      });
      socket.on('error', (e) => emit({ type: 'error', message: `tcp receiver: ${e.message}` }));
    });
    server.listen(0, HOST, () => {
      const address = server.address() as net.AddressInfo;
      emit({ type: 'ready', port: address.port });
    });
    return;
  }

  let expected = 0;
  listen({
    host: HOST,
    port: 0,
    ...(s.maxDatagramSize === undefined ? {} : { maxDatagramSize: s.maxDatagramSize }),
    ...(s.receiveWindow === undefined ? {} : { receiveWindow: s.receiveWindow }),
    ...(s.pathMtu === undefined ? {} : { pathMtu: s.pathMtu }),
    ...(s.secure === true ? { secure: { privateKey: BENCH_PRIVATE_KEY } } : {}),
    onListening: (address) => emit({ type: 'ready', port: address.port }),
  }).subscribe({
    next: (conn: Connection) => {
      start();
      conn.messages$.subscribe({
        next: (m) => {
          const b = fillByte(expected++);
          if (m.length !== MIB) bad++;
          for (let j = 0; j < m.length; j += SAMPLE_STRIDE) if (m[j] !== b) bad++;
          if (m[m.length - 1] !== b) bad++;
          bytes += m.length;
          if (bytes >= total) {
            const st = conn.stats;
            finish({
              messages: expected,
              packetsReceived: st.packetsReceived,
              dataPacketsReceived: st.dataPacketsReceived,
              duplicatesReceived: st.duplicatesReceived,
              droppedDatagrams: st.droppedDatagrams,
              acksSent: st.acksSent,
              repeatsSent: st.repeatsSent,
              packetsSent: st.packetsSent,
            });
          }
        },
        error: (e: Error) => emit({ type: 'error', message: `rudp receiver messages$: ${e.message}` }),
      });
    },
    error: (e: Error) => emit({ type: 'error', message: `rudp listen: ${e.message}` }),
  });
}

async function sender(flags: Flags): Promise<void> {
  const box = new CommandBox();
  childGuard(flagNumber(flags, 'limit', 120_000), box.handle);
  const s = spec(flags);
  const total = flagNumber(flags, 'total', 0);
  const port = flagNumber(flags, 'port', 0);
  const count = Math.ceil(total / MIB);
  if (s.kind === 'paced' || s.kind === 'flood') return blastSender(HOST, port, SOCKET_BUFFER, box);
  if (s.kind === 'udx') return udxSender(HOST, port, SOCKET_BUFFER, total, box);

  if (s.kind === 'tcp') {
    const socket = net.connect(port, HOST);
    socket.setNoDelay(false);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const cpu0 = process.cpuUsage();
    const start = monoMs();
    for (let i = 0; i < count; i++) {
      if (!socket.write(block(i))) await new Promise<void>((resolve) => socket.once('drain', resolve));
    }
    await new Promise<void>((resolve) => socket.end(resolve));
    emit({ type: 'done', start, end: monoMs(), ...side(cpu0) });
    await box.next('exit');
    socket.destroy();
    process.exit(0);
  }

  let cpu0 = process.cpuUsage();
  let start = 0;
  const subscription = connect({
    host: HOST,
    port,
    ...(s.maxDatagramSize === undefined ? {} : { maxDatagramSize: s.maxDatagramSize }),
    ...(s.receiveWindow === undefined ? {} : { receiveWindow: s.receiveWindow }),
    ...(s.pathMtu === undefined ? {} : { pathMtu: s.pathMtu }),
    ...(s.secure === true ? { secure: { serverPublicKey: benchPublicKey() } } : {}),
  })
    .pipe(
      switchMap((conn) =>
        concat(
          defer(() => {
            cpu0 = process.cpuUsage();
            start = monoMs();
            // range is lazy under mergeMap's concurrency: at most SEND_CONCURRENCY messages exist at once.
            return range(0, count).pipe(
              mergeMap((i) => conn.send(block(i)), SEND_CONCURRENCY),
              ignoreElements(),
            );
          }),
          defer(() => {
            const st = conn.stats;
            emit({
              type: 'done',
              start,
              end: monoMs(),
              ...side(cpu0),
              packetsSent: st.packetsSent,
              dataPacketsSent: st.dataPacketsSent,
              bytesSent: st.bytesSent,
              retransmissions: st.retransmissions,
              repeatsAnswered: st.repeatsAnswered,
              packetsReceived: st.packetsReceived,
              rtt: st.rtt,
              rto: st.rto,
              congestionWindow: st.congestionWindow,
              datagramSize: st.datagramSize,
            });
            return EMPTY;
          }),
        ),
      ),
    )
    .subscribe({ error: (e: Error) => emit({ type: 'error', message: `rudp sender: ${e.message}` }) });
  await box.next('exit');
  subscription.unsubscribe();
  await sleep(50);
  process.exit(0);
}

// ---- blasts: one trial, the ceiling search ------------------------------------------------------

interface BlastPair {
  readonly recv: Child;
  readonly send: Child;
  readonly recvReady: BlastReady;
  readonly sendReady: BlastReady;
}

let trialCounter = 0;

async function startBlastPair(mode: string, limitMs: number): Promise<BlastPair> {
  const args = ['--mode', mode, '--limit', String(limitMs)];
  const recv = new Child(`bulk:${mode}:recv`, __filename, ['--role', 'recv', ...args], { timeoutMs: limitMs + 5000 });
  try {
    const recvReady = await recv.next<BlastReady>('ready', 10_000);
    const send = new Child(`bulk:${mode}:send`, __filename, ['--role', 'send', '--port', String(recvReady.port), ...args], { timeoutMs: limitMs + 5000 });
    try {
      const sendReady = await send.next<BlastReady>('ready', 10_000);
      return { recv, send, recvReady, sendReady };
    } catch (error) {
      await send.stop(1000);
      throw error;
    }
  } catch (error) {
    await recv.stop(1000);
    throw error;
  }
}

async function stopBlastPair(pair: BlastPair): Promise<void> {
  await Promise.all([pair.send.stop(1000), pair.recv.stop(1000)]);
}

interface Trial {
  readonly size: number;
  readonly targetMBs: number | undefined; // undefined: flood
  readonly sent: BlastSent;
  readonly got: BlastCollected;
  readonly lossPercent: number;
  readonly sendRateMBs: number;
  readonly goodputMBs: number;
  readonly seconds: number;
  readonly socketDrops: number | undefined;
  readonly pass: boolean;
}

/** One blast through a pair: arm the receiver, blast, collect once the receiver has gone quiet. */
async function blastTrial(pair: BlastPair, size: number, targetMBs: number | undefined, stop: { bytes?: number; durationMs?: number }, timeoutMs: number): Promise<Trial> {
  const trial = ++trialCounter;
  const drops0 = udpSocketDrops([pair.recvReady.port, pair.sendReady.port]);
  pair.recv.send({ type: 'arm', trial });
  await pair.recv.next('armed', 5000);
  pair.send.send({ type: 'blast', trial, size, rate: targetMBs === undefined ? null : targetMBs * 1e6, ...stop });
  const sent = await pair.send.next<BlastSent>('blasted', timeoutMs);
  pair.recv.send({ type: 'collect' });
  const got = await pair.recv.next<BlastCollected>('collected', 5000);
  const drops1 = udpSocketDrops([pair.recvReady.port, pair.sendReady.port]);
  const lossPercent = sent.datagrams > 0 ? (100 * (sent.datagrams - got.datagrams)) / sent.datagrams : NaN;
  const seconds = (got.last - sent.start) / 1000;
  return {
    size,
    targetMBs,
    sent,
    got,
    lossPercent,
    sendRateMBs: sent.bytes / 1e6 / ((sent.end - sent.start) / 1000),
    goodputMBs: got.bytes / 1e6 / seconds,
    seconds,
    socketDrops: drops0 && drops1 ? drops1.drops - drops0.drops : undefined,
    pass: got.bad === 0 && sent.failed === 0 && lossPercent < DROP_LIMIT_PERCENT,
  };
}

interface Search {
  readonly mode: string;
  readonly size: number;
  readonly trials: Trial[];
  /** The passing trial with the highest goodput (its target paces the transfers), if any passed. */
  readonly best: Trial | undefined;
  readonly senderLimited: boolean;
  readonly recvReady?: BlastReady;
  readonly sendReady?: BlastReady;
  readonly error?: string;
}

/**
 * Finds the highest paced rate the receiver takes with < 0.1 % drops: doubling from a start rate
 * while trials pass, halving while they fail, then bisecting between the highest pass and the
 * lowest failure until they are within 10 %. Two passes in a row that sent below 90 % of their
 * targets, the second no faster than the first, end the search: the sender cannot go faster, so
 * the receiver was not the limit.
 */
async function searchCeiling(mode: string, trialMs: number, maxTrials: number, limitMs: number): Promise<Search> {
  const size = MODES[mode]!.payload!;
  const trials: Trial[] = [];
  let pair: BlastPair | undefined;
  try {
    pair = await startBlastPair(mode, limitMs);
    let target = SEARCH_START[size] ?? 64;
    let best: Trial | undefined; // the pass with the highest goodput: its target paces the transfers
    let passedAt = 0; // the highest target that passed (bisection)
    let failedAt = Infinity;
    let senderLimited = false;
    let shortPass: Trial | undefined;
    // Warm-up (not counted): the first trial of a fresh process runs partly unoptimized code.
    await blastTrial(pair, size, target, { durationMs: Math.min(200, trialMs) }, 10_000);
    for (let n = 0; n < maxTrials; n++) {
      const t = await blastTrial(pair, size, target, { durationMs: trialMs }, trialMs + 10_000);
      trials.push(t);
      process.stderr.write(
        `bulk ceiling ${size} B: target ${fmt(target)} MB/s → sent ${fmt(t.sendRateMBs)}, got ${fmt(t.goodputMBs)} MB/s, lost ${fmt(t.lossPercent, 3)} % ${t.pass ? 'pass' : 'FAIL'}\n`,
      );
      if (t.pass) {
        if (best === undefined || t.goodputMBs > best.goodputMBs) best = t;
        passedAt = Math.max(passedAt, target);
        // Two passes in a row that sent under their targets, the second no faster than the first
        // (within 10 %): asking more gives nothing, the sender is the limit.
        const short = t.sendRateMBs < SENDER_LIMITED * target;
        if (short && shortPass !== undefined && t.sendRateMBs < shortPass.sendRateMBs * BISECT_STOP) {
          senderLimited = true;
          break;
        }
        shortPass = short ? t : undefined;
      } else {
        failedAt = Math.min(failedAt, target);
        shortPass = undefined;
      }
      if (passedAt > 0 && failedAt / passedAt <= BISECT_STOP) break;
      target = passedAt === 0 ? target / 2 : failedAt === Infinity ? target * 2 : (passedAt + failedAt) / 2;
    }
    return { mode, size, trials, best, senderLimited, recvReady: pair.recvReady, sendReady: pair.sendReady };
  } catch (error) {
    return { mode, size, trials, best: undefined, senderLimited: false, error: error instanceof Error ? error.message.split('\n')[0]! : String(error) };
  } finally {
    if (pair !== undefined) await stopBlastPair(pair);
  }
}

// ---- orchestration -----------------------------------------------------------------------------

function failed(mode: string, error: unknown): RunOutcome {
  return { mode, ok: false, error: error instanceof Error ? error.message.split('\n')[0]! : String(error), bytes: 0, seconds: NaN, goodputMBs: NaN };
}

/** One transfer of `total` bytes by a blast pair of its own (paced at `targetMBs`, or a flood). */
async function runBlast(mode: string, total: number, targetMBs: number | undefined, limitMs: number): Promise<RunOutcome> {
  let pair: BlastPair | undefined;
  const udp0 = udpCounters();
  try {
    pair = await startBlastPair(mode, limitMs);
    const t = await blastTrial(pair, MODES[mode]!.payload!, targetMBs, { bytes: total }, limitMs);
    const udp1 = udpCounters();
    const ok = t.got.bad === 0 && t.sent.failed === 0;
    return {
      mode,
      ok,
      ...(ok ? {} : { error: `${t.got.bad} bad datagrams, ${t.sent.failed} failed sends` }),
      bytes: t.got.bytes,
      seconds: t.seconds,
      goodputMBs: t.goodputMBs,
      sender: t.sent as unknown as Side,
      receiver: t.got as unknown as Side,
      lossPercent: t.lossPercent,
      ...(targetMBs === undefined ? {} : { targetMBs }),
      sendRateMBs: t.sendRateMBs,
      ...(t.socketDrops === undefined ? {} : { socketDrops: t.socketDrops }),
      ...(udp0 && udp1 ? { systemDrops: udp1.rcvbufErrors - udp0.rcvbufErrors } : {}),
    };
  } catch (error) {
    return failed(mode, error);
  } finally {
    if (pair !== undefined) await stopBlastPair(pair);
  }
}

/** One transfer over TCP, udx or rx-rudp, each end in a fresh process. */
async function runStream(mode: string, total: number, limitMs: number): Promise<RunOutcome> {
  const kind = MODES[mode]!.kind;
  const args = ['--mode', mode, '--total', String(total), '--limit', String(limitMs)];
  const recv = new Child(`bulk:${mode}:recv`, __filename, ['--role', 'recv', ...args], { timeoutMs: limitMs + 5000 });
  let send: Child | undefined;
  const udp0 = udpCounters();
  try {
    const ready = await recv.next<Message & { port: number }>('ready', 10_000);
    send = new Child(`bulk:${mode}:send`, __filename, ['--role', 'send', '--port', String(ready.port), ...args], { timeoutMs: limitMs + 5000 });
    let senderPort: number | undefined;
    if (kind === 'udx') {
      senderPort = (await send.next<Message & { port: number }>('ready', 10_000)).port;
      recv.send({ type: 'peer', port: senderPort });
      await recv.next('connected', 5000);
      send.send({ type: 'go' });
    }
    let sent = await send.next<Message & { start: number; end: number } & Side>('done', limitMs);
    const received = await recv.next<Message & { bytes: number; bad: number; end: number } & Side>('done', limitMs);
    // Read while both sockets are open: the rx-rudp sender's is connected to the receiver's port.
    const drops = kind === 'tcp' ? undefined : udpSocketDrops([ready.port, ...(senderPort === undefined ? [] : [senderPort])], kind === 'rudp' ? [ready.port] : []);
    const udp1 = udpCounters();
    if (kind === 'udx') {
      // The udx sender's CPU from its first write until the receiver had the last byte.
      send.send({ type: 'stats' });
      const stats = await send.next<Message & Side>('stats', 5000);
      sent = { ...sent, ...stats, type: 'done', start: sent.start, end: sent.end };
    }
    const seconds = (received.end - sent.start) / 1000;
    const ok = received.bad === 0 && received.bytes === total;
    return {
      mode,
      ok,
      ...(ok ? {} : { error: `verification failed: ${received.bytes} of ${total} bytes, ${received.bad} bad samples` }),
      bytes: received.bytes,
      seconds,
      goodputMBs: received.bytes / 1e6 / seconds,
      sender: sent,
      receiver: received,
      ...(drops === undefined ? {} : { socketDrops: drops.drops }),
      ...(udp0 && udp1 ? { systemDrops: udp1.rcvbufErrors - udp0.rcvbufErrors } : {}),
    };
  } catch (error) {
    return failed(mode, error);
  } finally {
    send?.send({ type: 'exit' });
    await Promise.all([send?.stop(1000), recv.stop(1000)]);
  }
}

const range2 = (values: readonly number[], digits = 1): string =>
  values.length > 1 ? `${fmt(Math.min(...values), digits)}–${fmt(Math.max(...values), digits)}` : '';

function trialText(t: Trial): string {
  const result = t.pass ? '✓' : `✗ ${fmt(t.lossPercent, 2)} %`;
  const short = t.sendRateMBs < SENDER_LIMITED * (t.targetMBs ?? Infinity) ? ` (sent ${fmt(t.sendRateMBs, 0)})` : '';
  return `${fmt(t.targetMBs, 0)}${short} ${result}`;
}

async function run(flags: Flags): Promise<BenchResult> {
  const quick = flags.has('quick');
  const runs = flagNumber(flags, 'runs', quick ? 1 : 5);
  const mib = flagNumber(flags, 'mib', quick ? 64 : 256);
  const modes = (flagString(flags, 'modes') ?? DEFAULT_MODES.join(',')).split(',').filter((m) => m !== '');
  for (const m of modes) if (MODES[m] === undefined) throw new Error(`unknown mode ${m} (known: ${Object.keys(MODES).join(', ')})`);
  const total = mib * MIB;
  const limitMs = flagNumber(flags, 'run-limit', quick ? 30_000 : 60_000);
  const budgetMs = flagNumber(flags, 'budget', quick ? 45_000 : 170_000);
  const trialMs = flagNumber(flags, 'trial-ms', quick ? 300 : 1000);
  const maxTrials = flagNumber(flags, 'search-trials', quick ? 6 : 8);
  const begun = Date.now();
  const loadStart = os.loadavg()[0]!;
  const limits = socketBufferLimits();
  const skipped: string[] = [];

  // The ceiling first: for every datagram size a paced or flood row needs, or another row compares with.
  const ceilingModes = [...new Set(modes.map((m) => MODES[m]!.ceiling))];
  const searches = new Map<string, Search>();
  for (const mode of ceilingModes) searches.set(mode, await searchCeiling(mode, trialMs, maxTrials, limitMs));
  const searchSeconds = (Date.now() - begun) / 1000;

  const outcomes: RunOutcome[] = [];
  // Interleaved (run 1 of every mode, then run 2, …) so slow drifts of a noisy machine spread evenly.
  for (let r = 0; r < runs; r++) {
    for (const mode of modes) {
      if (Date.now() - begun > budgetMs) {
        skipped.push(`${mode} run ${r + 1}`);
        continue;
      }
      const s = MODES[mode]!;
      let outcome: RunOutcome;
      if (s.kind === 'paced') {
        const best = searches.get(mode)?.best;
        outcome = best === undefined ? failed(mode, 'no paced rate passed the ceiling search') : await runBlast(mode, total, best.targetMBs, limitMs);
      } else if (s.kind === 'flood') {
        outcome = await runBlast(mode, total, undefined, limitMs);
      } else {
        outcome = await runStream(mode, total, limitMs);
      }
      process.stderr.write(
        `bulk run ${r + 1}/${runs} ${mode}: ${outcome.ok ? `${fmt(outcome.goodputMBs)} MB/s${outcome.lossPercent === undefined ? '' : `, lost ${fmt(outcome.lossPercent, 3)} %`}` : `FAILED ${outcome.error}`}\n`,
      );
      outcomes.push(outcome);
    }
  }
  const loadEnd = os.loadavg()[0]!;

  const rows: string[][] = [];
  const summary: Record<string, unknown>[] = [];
  const byMode = (mode: string): RunOutcome[] => outcomes.filter((o) => o.mode === mode && o.ok);
  const goodput = (mode: string): number => median(byMode(mode).map((o) => o.goodputMBs));
  const tcp = goodput('tcp');
  for (const mode of modes) {
    const s = MODES[mode]!;
    const ok = byMode(mode);
    const all = outcomes.filter((o) => o.mode === mode);
    const g = goodput(mode);
    const ceiling = goodput(s.ceiling);
    const gib = (o: RunOutcome): number => o.bytes / GIB;
    const sendCpu = median(ok.map((o) => (o.sender?.cpu ?? NaN) / gib(o)));
    const recvCpu = median(ok.map((o) => (o.receiver?.cpu ?? NaN) / gib(o)));
    const sockDrops = ok.map((o) => o.socketDrops ?? NaN);
    const loss = ok.map((o) => o.lossPercent ?? NaN);
    let retxCell = '';
    let retx: number | undefined;
    let spurious: number | undefined;
    if (s.kind === 'rudp') {
      retx = median(ok.map((o) => (100 * Number(o.sender?.['retransmissions'] ?? NaN)) / Number(o.sender?.['dataPacketsSent'] ?? NaN)));
      spurious = median(ok.map((o) => (100 * Number(o.receiver?.['duplicatesReceived'] ?? NaN)) / Number(o.sender?.['dataPacketsSent'] ?? NaN)));
      retxCell = `${fmt(retx, 2)} (${fmt(spurious, 2)})`;
    } else if (s.kind === 'udx') {
      retx = median(ok.map((o) => (100 * Number(o.sender?.['retransmits'] ?? NaN)) / Number(o.sender?.['packetsTransmitted'] ?? NaN)));
      retxCell = `${fmt(retx, 2)} (16-bit count)`;
    } else if (s.kind === 'paced' || s.kind === 'flood') {
      retxCell = `lost ${fmt(median(loss), 3)} %${ok.length > 1 ? ` (max ${fmt(Math.max(...loss), 3)})` : ''}`;
    }
    const pacedAt = s.kind === 'paced' ? searches.get(mode)?.best?.targetMBs : undefined;
    const label = s.kind === 'paced' && pacedAt !== undefined ? `${s.label}, paced at ${fmt(pacedAt, 0)} MB/s${searches.get(mode)?.senderLimited ? ' (sender-limited)' : ''}` : s.label;
    const ceilingNote = s.kind === 'paced' ? '1.00' : `${fmt(g / ceiling, 2)}${s.ceiling === 'paced' && s.kind !== 'rudp' ? ' (vs 1200 B)' : ''}`;
    rows.push([
      label,
      `${ok.length}/${all.length}`,
      fmt(g),
      range2(ok.map((o) => o.goodputMBs)),
      s.kind === 'tcp' ? '1.00' : fmt(g / tcp, 2),
      ceilingNote,
      fmt(sendCpu, 2),
      fmt(recvCpu, 2),
      retxCell,
      s.kind === 'tcp' ? '' : `${fmt(median(sockDrops), 0)}${ok.length > 1 ? ` (max ${fmt(Math.max(...sockDrops), 0)})` : ''}`,
    ]);
    summary.push({
      mode,
      label,
      okRuns: ok.length,
      runs: all.length,
      goodputMBs: g,
      goodputRuns: ok.map((o) => o.goodputMBs),
      vsTcp: g / tcp,
      vsCeiling: g / ceiling,
      ceilingMode: s.ceiling,
      senderCpuSecPerGiB: sendCpu,
      receiverCpuSecPerGiB: recvCpu,
      senderCpuRuns: ok.map((o) => (o.sender?.cpu ?? NaN) / gib(o)),
      receiverCpuRuns: ok.map((o) => (o.receiver?.cpu ?? NaN) / gib(o)),
      retransmitPercent: retx,
      spuriousRetransmitPercent: spurious,
      socketDropRuns: sockDrops,
      systemRcvbufDropRuns: ok.map((o) => o.systemDrops ?? NaN),
      ...(s.kind === 'paced' || s.kind === 'flood' ? { lossPercentRuns: loss, sendRateMBsRuns: ok.map((o) => o.sendRateMBs ?? NaN), targetMBs: pacedAt ?? null } : {}),
      ...(s.kind === 'udx' ? { udxMtu: ok[0]?.sender?.['mtu'] ?? null, udxVersion: ok[0]?.receiver?.['udxVersion'] ?? null } : {}),
      errors: all.filter((o) => !o.ok).map((o) => o.error),
    });
  }

  // Granted socket buffers (getsockopt SO_RCVBUF / SO_SNDBUF after asking for 4 MiB).
  const anySearch = [...searches.values()].find((s) => s.recvReady !== undefined);
  const udxRun = outcomes.find((o) => o.mode === 'udx' && o.ok);
  const buffers = {
    askedBytes: SOCKET_BUFFER,
    blastReceiver: anySearch?.recvReady ? { recv: anySearch.recvReady.recvBuffer, send: anySearch.recvReady.sendBuffer } : null,
    blastSender: anySearch?.sendReady ? { recv: anySearch.sendReady.recvBuffer, send: anySearch.sendReady.sendBuffer } : null,
    udxReceiver: udxRun ? { recv: udxRun.receiver?.['recvBuffer'], send: udxRun.receiver?.['sendBuffer'] } : null,
    udxSender: udxRun ? { recv: udxRun.sender?.['recvBuffer'], send: udxRun.sender?.['sendBuffer'] } : null,
    ...limits,
  };
  const mibText = (n: unknown): string => (typeof n === 'number' ? `${fmt(n / MIB, n % MIB === 0 ? 0 : 2)} MiB` : '?');

  const searchRows = [...searches.values()].map((s) => [
    `${s.size} B`,
    s.trials.map(trialText).join(', ') || (s.error ?? '–'),
    s.best === undefined ? 'none passed' : `${fmt(s.best.targetMBs, 0)} MB/s${s.senderLimited ? ' (sender-limited)' : ''}`,
    s.best === undefined ? '–' : `${fmt(s.best.goodputMBs)} MB/s, lost ${fmt(s.best.lossPercent, 3)} %`,
    s.best === undefined ? '–' : `${fmt(s.best.sent.cpu / (s.best.sent.bytes / GIB), 2)} / ${fmt(s.best.got.cpu / (s.best.got.bytes / GIB), 2)}`,
  ]);

  const failures = outcomes.filter((o) => !o.ok);
  const footnote = [
    `**How each number was measured.** Every row is one transfer of ${mib} MiB per run, sender and receiver each in a fresh child process on ${HOST}; rows interleave (run 1 of every mode, then run 2, …). ` +
      `*Goodput* = verified bytes received / (sender's first write → receiver's last byte), both stamps from CLOCK_MONOTONIC (process.hrtime, one clock for all processes), 1 MB = 10⁶ B; median over the ok runs, *range* = min–max. ` +
      `*CPU s/GiB* = process.cpuUsage() (user+system) of that child over its part of the transfer / GiB received, median; for udx the sender's CPU runs until the receiver had the last byte, for rx-rudp until every message was acknowledged, for TCP until \`end()\` flushed, for the blast until the last send callback.`,
    `*rx-rudp*: public API; sender \`range(0, n).pipe(mergeMap(i => conn.send(block), ${SEND_CONCURRENCY}))\` on a connected socket (the starter's), receiver a listener; the receiver checks length, order and one byte in ${SAMPLE_STRIDE} plus the last byte of every message. ` +
      `Retx % = retransmitted / DATA packets sent; spurious = duplicates the receiver got. ` +
      `*TCP*: node:net, Nagle on, 1 MiB writes awaiting 'drain', same byte sampling across the stream. ` +
      `*udx-native*${buffers.udxReceiver ? ` ${String(udxRun?.receiver?.['udxVersion'] ?? '')}` : ''}: one stream each way of two udx sockets (${mibText(SOCKET_BUFFER)} buffers asked), each 1 MiB block behind a 4-byte length, same sampling per block; retx % = its retransmits / packets transmitted, from 16-bit counters that wrap at 65536 (a low figure may be a wrapped one); ` +
      `its MTU was ${String(udxRun?.sender?.['mtu'] ?? '?')} B (compared with the 1200 B ceiling).`,
    `*Ceiling* (paced blast): datagrams of one size from a \`node:dgram\` socket bound to port 0 and connected to the receiver (as rx-rudp's starter socket is), each \`socket.send(buf, callback)\` (the adapter's call), ≤ 1024 sends awaiting their callback, to an unconnected receiver bound to ${HOST} (as a listener); both ask for ${mibText(SOCKET_BUFFER)} send and receive buffers, like the adapter. ` +
      `The sender keeps a schedule (datagram k due at k × size / rate), sends what is due from a timer or a setImmediate loop when behind, and never catches up by more than 4 ms of schedule or 1 MiB, whichever is more (past that it moves the schedule instead: a slip, counted in the JSON). ` +
      `The search (${fmt(searchSeconds, 0)} s, one process pair per size, ${trialMs} ms per trial) doubles the rate while trials pass and halves it while they fail, then bisects until the failing rate is within ${Math.round((BISECT_STOP - 1) * 100)} % of the passing one; a trial passes with < ${DROP_LIMIT_PERCENT} % of its datagrams lost (sent − received, counted by both ends; the receiver waits until 60 ms pass without a datagram); two passes in a row that each sent under ${SENDER_LIMITED * 100} % of their targets, the second no more than ${Math.round((BISECT_STOP - 1) * 100)} % faster than the first, end the search as *sender-limited* (Node could not send faster; the receiver took all of it). A 200 ms warm-up trial before each search is not counted. ` +
      `The ceiling rows are then transfers of ${mib} MiB paced at the target of the passing trial with the highest goodput, measured like the others; *lost* = their datagrams sent and not received (median, max over runs). *× ceiling* = goodput / the median goodput of the ceiling row of the same datagram size (1200 B for TCP and udx).`,
    `*Socket drops* = the \`drops\` column of /proc/net/udp for this run's own UDP sockets (both ends), read as the transfer ended (median, max over runs); the system-wide Udp RcvbufErrors delta is in the JSON. ` +
      `Socket buffers: asked ${mibText(SOCKET_BUFFER)}; granted (getsockopt, which on Linux reports twice what was set, the kernel's bookkeeping allowance) receive ${mibText(buffers.blastReceiver?.recv)} / send ${mibText(buffers.blastSender?.send)} for the blast (udx: ${mibText(buffers.udxReceiver?.recv)} / ${mibText(buffers.udxSender?.send)}); net.core.rmem_max = ${limits['rmemMax'] ?? '?'}, wmem_max = ${limits['wmemMax'] ?? '?'}, rmem_default = ${limits['rmemDefault'] ?? '?'}. ` +
      `1-min load average ${fmt(loadStart, 2)} as this benchmark started, ${fmt(loadEnd, 2)} as it ended, on ${os.cpus().length} cores shared with other processes.`,
  ];
  const markdown = [
    `### Bulk transfer, loopback, two processes: ${mib} MiB as 1 MiB messages, median of ${runs} run(s)`,
    '',
    table(['transport', 'ok runs', 'goodput MB/s', 'range', '× TCP', '× ceiling', 'send CPU s/GiB', 'recv CPU s/GiB', 'retx % (spurious %) / lost', 'socket drops'], rows),
    '',
    `Ceiling search (paced blast, < ${DROP_LIMIT_PERCENT} % lost to pass), targets in MB/s in the order tried:`,
    '',
    table(['datagram', 'trials: target MB/s → ✓ pass / ✗ lost %', 'ceiling rate', 'that trial: goodput, lost', 'send / recv CPU s/GiB'], searchRows),
    '',
    ...footnote.flatMap((f) => [f, '']),
    ...(failures.length > 0 ? ['**Failed runs:**', ...failures.map((f) => `- ${f.mode}: ${f.error}`), ''] : []),
    ...(skipped.length > 0 ? [`**Skipped (time budget of ${budgetMs / 1000} s spent):** ${skipped.join(', ')}`, ''] : []),
  ]
    .join('\n')
    .trimEnd();
  return {
    name: 'bulk',
    title: 'Bulk transfer',
    markdown,
    data: {
      mib,
      runs,
      summary,
      buffers,
      loadAverage: { start: loadStart, end: loadEnd },
      searches: [...searches.values()].map((s) => ({
        mode: s.mode,
        size: s.size,
        ceilingMBs: s.best?.targetMBs ?? null,
        senderLimited: s.senderLimited,
        error: s.error ?? null,
        // Per trial: target MB/s, sent MB/s, goodput MB/s, lost %, datagrams sent, received, socket drops, schedule slips, send CPU s, recv CPU s, pass.
        trials: s.trials.map((t) => [t.targetMBs ?? null, t.sendRateMBs, t.goodputMBs, t.lossPercent, t.sent.datagrams, t.got.datagrams, t.socketDrops ?? null, t.sent.slips, t.sent.cpu, t.got.cpu, t.pass]),
      })),
      // Per run, compact: mode, goodput MB/s, seconds, CPU s sender/receiver, retransmissions, receiver duplicates, socket drops, system rcvbuf drops, blast loss %, error.
      runsDetail: outcomes.map((o) => [
        o.mode,
        o.goodputMBs,
        o.seconds,
        o.sender?.cpu ?? null,
        o.receiver?.cpu ?? null,
        o.sender?.['retransmissions'] ?? o.sender?.['retransmits'] ?? null,
        o.receiver?.['duplicatesReceived'] ?? null,
        o.socketDrops ?? null,
        o.systemDrops ?? null,
        o.lossPercent ?? null,
        o.error ?? null,
      ]),
      skipped,
    },
    seconds: 0,
  };
}

benchMain((flags) => (flags.has('quick') ? 8 : 30) * 60_000, run, { recv: receiver, send: sender });
