/**
 * The two ends of one bench/channels.ts variant over the kernel path, each in its own process
 * inside a network namespace: `--role receiver` (ruA, listens) and `--role sender` (ruB, connects
 * and sends every stream and the bulk transfer). Also the variants themselves (CASES), which the
 * in-process fallback of channels.ts runs too.
 *
 * Clock: as bench/path-peer.ts, every stamp and arrival time is process.hrtime.bigint()
 * (CLOCK_MONOTONIC), one clock for every process of the machine whatever its namespace, so
 * arrival − stamp is the one-way latency across the two processes with no offset to estimate.
 *
 * A stream message is [stamp: u64 LE][stream: u8][seq: u32 LE] and padding to its size. Beside the
 * channels, the sender sends a probe: a 16-byte raw UDP datagram every 10 ms ([stamp][seq]) to the
 * receiver's probe port. Nothing resends or schedules it, so its one-way latency is what the path
 * (propagation, the bottleneck's queue, linkem, the kernel) and the receiver's event loop add;
 * what a channel's latency has above it was added in the sender (its channel scheduling, pacing,
 * congestion window, event loop) or by the transport's own recovery.
 */
import * as dgram from 'node:dgram';
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import { connect, listen, MessageExpiredError, type Channel, type Connection, type ConnectionStats } from '../lib/index';
import { cpuSeconds, flagNumber, flagString, loopDelaySummary, LOOP_RESOLUTION_MS, parseFlags, type Flags } from './lib/common';
import { CommandBox, childGuard, emit } from './lib/proc';
import { median, summarize, type Summary } from './lib/stats';

// ---- the variants ------------------------------------------------------------------------------

export interface StreamSpec {
  /** The channel it goes on. */
  readonly channel: number;
  readonly size: number;
  /** ms between messages. */
  readonly period: number;
  readonly ttl?: number;
}

export interface Variant {
  /** Random loss, % of datagrams each way. */
  readonly loss: number;
  /** Streams sent by the sender; the first is the measured one. */
  readonly streams: readonly StreamSpec[];
  /** A bulk transfer beside (channel 3, priority -1): as fast as the windows allow, or paced at this many MiB/s. */
  readonly bulk?: 'unpaced' | number;
  /** Over the kernel path, the link gets the bulk case's bottleneck (rate and queue). */
  readonly bottleneck?: boolean;
}

export const BULK_CHANNEL = 3;
export const BULK_PRIORITY = -1;
export const BULK_MESSAGE = 64 * 1024;
/** The unpaced bulk transfer keeps at most this much queued on its channel, refilled as it drains. */
export const BULK_QUEUED = 4 * 1024 * 1024;

const control = (): StreamSpec => ({ channel: 1, size: 1024, period: 10 });

export const CASES: Record<string, Record<string, Variant>> = {
  isolation: {
    two: { loss: 5, streams: [{ channel: 2, size: 1024, period: 10 }, { channel: 1, size: 1024, period: 10 }] },
    alone: { loss: 5, streams: [{ channel: 2, size: 1024, period: 10 }] },
    one: { loss: 5, streams: [{ channel: 1, size: 1024, period: 10 }, { channel: 1, size: 1024, period: 10 }] },
  },
  position: {
    ttl: { loss: 10, streams: [{ channel: 1, size: 16, period: 20, ttl: 50 }] },
    reliable: { loss: 10, streams: [{ channel: 1, size: 16, period: 20 }] },
  },
  bulk: {
    alone: { loss: 0, streams: [control()], bottleneck: true },
    'with bulk': { loss: 0, streams: [control()], bulk: 'unpaced', bottleneck: true },
    'with bulk at 8 MiB/s': { loss: 0, streams: [control()], bulk: 8, bottleneck: true },
  },
};

export function variantOf(flags: Flags): Variant {
  const variant = CASES[flagString(flags, 'case') ?? '']?.[flagString(flags, 'variant') ?? ''];
  if (variant === undefined) throw new Error(`unknown --case ${flagString(flags, 'case')} / --variant ${flagString(flags, 'variant')}`);
  return variant;
}

/** Messages each stream sends in `seconds` (sender and receiver count alike). */
export function streamCounts(variant: Variant, seconds: number): number[] {
  return variant.streams.map((s) => Math.round((seconds * 1000) / s.period));
}

// ---- the sending side, shared with the in-process version ---------------------------------------

/**
 * Feeds the bulk channel: at a fixed rate (MiB/s, catching up after a late timer so the rate holds
 * on average), or unpaced, keeping at most BULK_QUEUED queued and refilling as it drains.
 */
export function startBulk(conn: Connection, rate: Variant['bulk']): { stop(): void; readonly queued: number } {
  const state = { stopped: false, queued: 0, stop: (): void => undefined };
  if (rate === undefined) return state;
  const bulk = conn.channel(BULK_CHANNEL, { priority: BULK_PRIORITY });
  const block = new Uint8Array(BULK_MESSAGE);
  const queue = (): void => {
    bulk.send$.next(block);
    state.queued += BULK_MESSAGE;
  };
  if (typeof rate === 'number') {
    const every = (BULK_MESSAGE / 2 ** 20 / rate) * 1000;
    const t0 = performance.now();
    let sent = 0;
    const pacer = setInterval(() => {
      for (; sent * every <= performance.now() - t0; sent++) queue();
    }, Math.max(1, Math.floor(every)));
    state.stop = () => clearInterval(pacer);
    return state;
  }
  // The emissions a send causes while filling are skipped: the loop counts what it queued.
  let filling = false;
  bulk.bufferedBytes$.subscribe((queued) => {
    if (filling) return;
    filling = true;
    for (let q = queued; !state.stopped && q + BULK_MESSAGE <= BULK_QUEUED; q += BULK_MESSAGE) queue();
    filling = false;
  });
  state.stop = () => void (state.stopped = true);
  return state;
}

/**
 * Sends every stream on its channel, each at its period, for `seconds`: [stamp: 8 bytes, written
 * by `stamp`][stream: u8][seq: u32 LE], padded to its size. Counts the sends and the first
 * stream's MessageExpiredErrors (which may come after it resolved) into `counts`.
 */
export function sendStreams(channels: readonly Channel[], streams: readonly StreamSpec[], seconds: number, stamp: (message: Buffer) => void, counts: { sent: number; expired: number }): Promise<void> {
  const period = Math.min(...streams.map((s) => s.period));
  const t0 = performance.now();
  return new Promise<void>((resolve) => {
    let i = 0;
    const tick = (): void => {
      streams.forEach((s, index) => {
        if ((i * period) % s.period !== 0 || i * period >= seconds * 1000) return;
        const message = Buffer.alloc(s.size);
        stamp(message);
        message.writeUInt8(index, 8);
        message.writeUInt32LE((i * period) / s.period, 9);
        counts.sent++;
        channels[index]!.send(message).subscribe({ error: (error: unknown) => void (error instanceof MessageExpiredError && index === 0 && counts.expired++) });
      });
      if (++i * period >= seconds * 1000) return resolve();
      setTimeout(tick, Math.max(0, t0 + i * period - performance.now()));
    };
    tick();
  });
}

// ---- reports ---------------------------------------------------------------------------------------

export interface LoopReport {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export interface ReceiverReport {
  /** Messages of the measured stream delivered. */
  readonly delivered: number;
  /** Every stream's messages came in the order sent (gaps allowed only with a ttl). */
  readonly inOrder: boolean;
  readonly duplicates: number;
  /** The measured stream's one-way latency, ms. */
  readonly latency: Summary;
  /** The same, of the messages sent STEADY_AFTER_MS or later after the first (past a bulk transfer's startup). */
  readonly steady: Summary;
  /**
   * Per message of the measured stream: its latency − the latency of the probe datagram sent
   * nearest in time (within 2 probe periods): what the transport added over a raw datagram on the
   * same path at the same moment (sender scheduling, window, loss recovery).
   */
  readonly excess: Summary;
  /** Messages of the measured stream whose excess was more than EXCESS_LATE_MS: recovered from a loss, or held by the sender that long. */
  readonly excessLate: number;
  readonly probe: { readonly received: number; readonly latency: Summary };
  /** Bulk MiB/s received while the measured stream ran (first bulk byte → its last message). */
  readonly bulkMiBps: number | undefined;
  readonly eventLoop: LoopReport;
  readonly cpuSeconds: number;
  readonly transport: Record<string, number>;
}

export interface SenderReport {
  /** Messages of the measured stream sent. */
  readonly sent: number;
  /** Messages of every stream sent. */
  readonly sentAll: number;
  /** send() calls of the measured stream that ended with MessageExpiredError. */
  readonly expired: number;
  readonly probeSent: number;
  /** Bulk bytes handed to the channel. */
  readonly bulkQueuedBytes: number;
  readonly eventLoop: LoopReport;
  readonly cpuSeconds: number;
  readonly transport: Record<string, number>;
  /** Medians of the connection's figures sampled every 250 ms while the streams ran. */
  readonly sampled: { readonly rttMs: number; readonly congestionWindow: number; readonly inFlightBytes: number; readonly samples: number };
}

const now = (): bigint => process.hrtime.bigint();
const msSince = (stamp: bigint, t: bigint): number => Math.round(Number(t - stamp) / 1e3) / 1e3; // µs resolution
export const PROBE_SIZE = 16;
export const PROBE_PERIOD_MS = 10;
export const STEADY_AFTER_MS = 3000;
export const EXCESS_LATE_MS = 15;
const STATS_SAMPLE_MS = 250;

function loopMonitor(): IntervalHistogram {
  const h = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  h.enable();
  return h;
}

const counters = (s: ConnectionStats | undefined, keys: readonly (keyof ConnectionStats)[]): Record<string, number> =>
  s === undefined ? {} : Object.fromEntries(keys.map((k) => [k, Number(s[k] ?? NaN)]));

/** Each message's latency − that of the probe sent nearest in time to it (within 2 probe periods). */
function excessOverProbe(measured: readonly { stamp: number; latency: number }[], probeStamps: readonly number[], probeLatencies: readonly number[]): number[] {
  const order = probeStamps.map((_, i) => i).sort((a, b) => probeStamps[a]! - probeStamps[b]!);
  const stamps = order.map((i) => probeStamps[i]!);
  const lat = order.map((i) => probeLatencies[i]!);
  const out: number[] = [];
  for (const m of measured) {
    let lo = 0;
    let hi = stamps.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (stamps[mid]! < m.stamp) lo = mid + 1;
      else hi = mid;
    }
    let best = -1;
    for (const j of [lo - 1, lo]) if (j >= 0 && j < stamps.length && (best < 0 || Math.abs(stamps[j]! - m.stamp) < Math.abs(stamps[best]! - m.stamp))) best = j;
    if (best >= 0 && Math.abs(stamps[best]! - m.stamp) <= 2 * PROBE_PERIOD_MS * 1e6) out.push(m.latency - lat[best]!);
  }
  return out;
}

// ---- receiver (ruA) ----------------------------------------------------------------------------------

async function receiver(flags: Flags): Promise<void> {
  const box = new CommandBox();
  childGuard(flagNumber(flags, 'limit', 120_000), box.handle);
  const variant = variantOf(flags);
  const seconds = flagNumber(flags, 'seconds', 10);
  const host = flagString(flags, 'host') ?? '0.0.0.0';
  const port = flagNumber(flags, 'port', 0);
  const probePort = flagNumber(flags, 'probe-port', 0);
  const counts = streamCounts(variant, seconds);
  const total = counts.reduce((a, b) => a + b, 0);
  const reliable = variant.streams.every((s) => s.ttl === undefined);
  const loop = loopMonitor();
  let cpu0 = process.cpuUsage();
  let started = false;
  const start = (): void => {
    if (started) return;
    started = true;
    loop.reset();
    cpu0 = process.cpuUsage();
  };

  const latencies: number[] = [];
  /** The measured stream's messages: send stamp (ns) and latency (ms), in arrival order. */
  const measured: { stamp: number; latency: number; seq: number }[] = [];
  const next = variant.streams.map(() => 0);
  let inOrder = true;
  let duplicates = 0;
  let arrived = 0;
  let bulkBytes = 0;
  let bulkFirst: bigint | undefined;
  let bulkAtLast: { bytes: number; at: bigint } | undefined;
  let connection: Connection | undefined;

  const probeLatencies: number[] = [];
  const probeStamps: number[] = [];
  const probe = dgram.createSocket('udp4');
  probe.on('message', (m) => {
    const t = now();
    if (m.length < 8) return;
    const stamp = m.readBigUInt64LE(0);
    probeLatencies.push(msSince(stamp, t));
    probeStamps.push(Number(stamp));
  });
  await new Promise<void>((resolve) => probe.bind(probePort, host, resolve));

  const channelIds = [...new Set(variant.streams.map((s) => s.channel))];
  listen({ host, port, channels: true, onListening: (a) => emit({ type: 'ready', port: a.port }) }).subscribe({
    next: (conn) => {
      connection = conn;
      for (const id of channelIds) {
        conn.channel(id).messages$.subscribe((m) => {
          const t = now();
          start();
          const view = Buffer.from(m.buffer, m.byteOffset, m.byteLength);
          const stream = view.readUInt8(8);
          const seq = view.readUInt32LE(9);
          if (seq < next[stream]!) {
            duplicates++;
            inOrder = false;
            return;
          }
          if (reliable && seq !== next[stream]) inOrder = false;
          next[stream] = seq + 1;
          if (stream === 0) {
            const stamp = view.readBigUInt64LE(0);
            const latency = msSince(stamp, t);
            latencies.push(latency);
            measured.push({ stamp: Number(stamp), latency, seq });
            if (seq === counts[0]! - 1 && bulkFirst !== undefined) bulkAtLast = { bytes: bulkBytes, at: t };
          }
          if (++arrived === total && reliable) emit({ type: 'done' });
        });
      }
      if (variant.bulk !== undefined) {
        conn.channel(BULK_CHANNEL).messages$.subscribe((m) => {
          bulkFirst ??= now();
          bulkBytes += m.length;
        });
      }
    },
    error: (e: Error) => emit({ type: 'error', message: `receiver: ${e.message}` }),
  });

  await box.next('finish');
  const cpu = cpuSeconds(cpu0).total;
  const steadyFrom = Math.ceil(STEADY_AFTER_MS / variant.streams[0]!.period);
  const excess = excessOverProbe(measured, probeStamps, probeLatencies);
  const report: ReceiverReport = {
    delivered: latencies.length,
    inOrder,
    duplicates,
    latency: summarize(latencies),
    steady: summarize(measured.filter((m) => m.seq >= steadyFrom).map((m) => m.latency)),
    excess: summarize(excess),
    excessLate: excess.filter((e) => e > EXCESS_LATE_MS).length,
    probe: { received: probeLatencies.length, latency: summarize(probeLatencies) },
    bulkMiBps: bulkFirst !== undefined && bulkAtLast !== undefined ? bulkAtLast.bytes / 2 ** 20 / (Number(bulkAtLast.at - bulkFirst) / 1e9) : undefined,
    eventLoop: loopDelaySummary(loop),
    cpuSeconds: cpu,
    transport: counters(connection?.stats, ['packetsSent', 'bytesSent', 'acksSent', 'repeatsSent', 'packetsReceived', 'dataPacketsReceived', 'duplicatesReceived', 'droppedDatagrams']),
  };
  emit({ type: 'report', report, latencies: flagString(flags, 'keep-latencies') === '1' ? latencies : undefined });
}

// ---- sender (ruB) --------------------------------------------------------------------------------------

async function sender(flags: Flags): Promise<void> {
  const box = new CommandBox();
  childGuard(flagNumber(flags, 'limit', 120_000), box.handle);
  const variant = variantOf(flags);
  const seconds = flagNumber(flags, 'seconds', 10);
  const host = flagString(flags, 'host') ?? '127.0.0.1';
  const port = flagNumber(flags, 'port', 0);
  const probePort = flagNumber(flags, 'probe-port', 0);
  const streams = variant.streams;
  const counts = streamCounts(variant, seconds);

  const conn = await new Promise<Connection>((resolve, reject) => {
    connect({ host, port, channels: true }).subscribe({ next: resolve, error: reject });
  });
  const loop = loopMonitor();
  const cpu0 = process.cpuUsage();
  const channels = streams.map((s): Channel => conn.channel(s.channel, s.ttl === undefined ? undefined : { ttl: s.ttl }));

  // The bulk transfer starts first, so the measured stream meets it at its full rate.
  const bulk = startBulk(conn, variant.bulk);

  const probe = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => probe.bind(0, resolve));
  let probeSent = 0;
  const probeStart = performance.now();
  const probeTimer = setInterval(() => {
    const due = Math.floor((performance.now() - probeStart) / PROBE_PERIOD_MS) + 1;
    while (probeSent < due) {
      const b = Buffer.alloc(PROBE_SIZE);
      b.writeBigUInt64LE(now(), 0);
      b.writeUInt32LE(probeSent++, 8);
      probe.send(b, probePort, host);
    }
  }, PROBE_PERIOD_MS);

  const samples: { rtt: number; cwnd: number; inFlight: number }[] = [];
  const sampler = setInterval(() => {
    const s = conn.stats;
    samples.push({ rtt: s.rtt ?? NaN, cwnd: s.congestionWindow, inFlight: s.inFlightBytes });
  }, STATS_SAMPLE_MS);

  const sending = { sent: 0, expired: 0 };
  await sendStreams(channels, streams, seconds, (message) => message.writeBigUInt64LE(now(), 0), sending);
  bulk.stop();
  clearInterval(probeTimer);
  clearInterval(sampler);
  const eventLoop = loopDelaySummary(loop);
  const cpu = cpuSeconds(cpu0).total;
  emit({ type: 'sent', sent: counts[0], sentAll: sending.sent, probeSent });

  // Stays connected until told: what is unacknowledged still goes, and ttl expiries are counted.
  await box.next('exit');
  const med = (f: (x: (typeof samples)[number]) => number): number => median(samples.map(f).filter((v) => Number.isFinite(v)));
  const report: SenderReport = {
    sent: counts[0]!,
    sentAll: sending.sent,
    expired: sending.expired,
    probeSent,
    bulkQueuedBytes: bulk.queued,
    eventLoop,
    cpuSeconds: cpu,
    transport: counters(conn.stats, ['packetsSent', 'bytesSent', 'dataPacketsSent', 'retransmissions', 'repeatsAnswered', 'redundantSends', 'acksSent', 'pingsSent', 'packetsReceived', 'messagesExpired']),
    sampled: { rttMs: med((x) => x.rtt), congestionWindow: med((x) => x.cwnd), inFlightBytes: med((x) => x.inFlight), samples: samples.length },
  };
  emit({ type: 'stats', report });
  process.exit(0);
}

if (require.main === module) {
  const flags = parseFlags();
  const role = flagString(flags, 'role');
  if (role === 'receiver') void receiver(flags);
  else if (role === 'sender') void sender(flags);
  else throw new Error(`channels-peer: unknown --role ${role}`);
}
