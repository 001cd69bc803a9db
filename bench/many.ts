/**
 * Many connections on loopback: a listener process that echoes, and --clients client processes
 * that together open N concurrent connections (each its own UDP socket, ramped up at --ramp per
 * second in all), then send a 100-byte message per connection per second for the steady phase.
 * Reports the listener's CPU % and RSS over the steady phase, the client-measured round trip
 * (latency = RTT / 2), whether every message came back, and per client the rate it was asked to
 * offer against what it offered and got back: a load generator that saturates offers less than
 * asked, and the report says so instead of measuring a lighter load. A fresh listener and fresh
 * clients per connection count.
 *
 *   node bench/dist/bench/many.js [--quick] [--conns 1000,10000] [--seconds 30] [--ramp 500] [--clients N]
 */
import { availableParallelism } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { connect, listen, type Connection, type EndpointStats } from '../lib/index';
import { benchMain, cpuSeconds, loopDelaySummary, watchGc, LOOP_RESOLUTION_MS, flagNumber, flagString, table, udpCounters, type BenchResult, type Flags } from './lib/common';
import { Child, CommandBox, childGuard, emit, sleep, type Message } from './lib/proc';
import { fmt, summarize, type Summary } from './lib/stats';
import { idleRole, virtualRole, type IdleReport } from './many-idle';

const HOST = '127.0.0.1';
const MIB = 1024 * 1024;
const MESSAGE = 100;
const BUCKETS = 100; // sends spread over 100 slots of 10 ms
const DRAIN_MS = 5000;
/** Connections per client process by default: one process carries 10,000 at ~60 % of a core (2026-12-04). */
const CONNS_PER_CLIENT = 10_000;
/** Offered below this share of the asked rate, a run is reported as failed: it measured a lighter load. */
const OFFERED_MIN_SHARE = 0.98;
/**
 * Round trips of messages sent this long after the steady phase began are also summarized apart:
 * the first message on each of 10,000 idle connections, all within one second, costs ~3 × a later
 * one (code not yet optimized by the JIT, each connection's first packet state), and that second
 * holds the whole tail (2026-12-04: p99 RTT 156 ms in it, ~10 ms in every later second).
 */
const SETTLE_MS = 2000;

/**
 * No more client processes than the cores the listener leaves: the kernel shares a core evenly
 * among runnable processes, so 4 clients on 2 cores held the listener to 41 % of a core while it
 * needed ~60 %, and it fell behind for good (3.6 M receive-buffer drops, 8 % of echoes back).
 */
function defaultClients(conns: number): number {
  return Math.max(1, Math.min(Math.ceil(conns / CONNS_PER_CLIENT), availableParallelism() - 1));
}

interface ListenerReport {
  readonly cpuPercent: number;
  readonly cpuSeconds: number;
  readonly rssMiB: number;
  readonly rssMaxMiB: number;
  readonly heapUsedMiB: number;
  /** Event-loop delay over the steady phase, ms. */
  readonly eventLoop: { p50: number; p99: number; max: number };
  readonly gc: { count: number; totalMs: number; maxMs: number };
  readonly connections: number;
  readonly accepted: number;
  readonly echoed: number;
  readonly connectionErrors: Record<string, number>;
  readonly endpoint: EndpointStats;
}

interface ClientReport {
  readonly conns: number;
  readonly open: number;
  readonly connectFailures: Record<string, number>;
  readonly connectMs: Summary;
  readonly rampSeconds: number;
  readonly sent: number;
  readonly received: number;
  readonly steadySeconds: number;
  readonly rtt: Summary;
  readonly cpuPercent: number;
  readonly rssMiB: number;
  readonly eventLoop: { p50: number; p99: number; max: number };
  readonly gc: { count: number; totalMs: number; maxMs: number };
  readonly closedWithError: Record<string, number>;
  readonly packetsSent: number;
  readonly pingsSent: number;
  readonly retransmissions: number;
  /** How late the send steps ran against their 10 ms schedule, ms. */
  readonly stepLag?: Summary;
  /** Round trips of messages sent from SETTLE_MS into the steady phase on. */
  readonly rttSettled: Summary;
  /** Round trips of the steady phase, ms (0.01 ms resolution), when asked with --samples. */
  readonly rttSamples?: number[];
  /** The same, of messages sent from SETTLE_MS on. */
  readonly rttSettledSamples?: number[];
}

function bump(record: Record<string, number>, key: string): void {
  record[key] = (record[key] ?? 0) + 1;
}

// ---- sub-process roles -------------------------------------------------------------------------

async function listener(flags: Flags): Promise<void> {
  const box = new CommandBox();
  childGuard(flagNumber(flags, 'limit', 300_000), box.handle);
  let connections = 0;
  let accepted = 0;
  let echoed = 0;
  const connectionErrors: Record<string, number> = {};
  let endpoint: EndpointStats | undefined;
  listen({
    host: HOST,
    port: 0,
    maxConnections: 100_000,
    onListening: (address, stats) => {
      endpoint = stats;
      emit({ type: 'ready', port: address.port });
    },
  }).subscribe({
    next: (conn) => {
      connections++;
      accepted++;
      conn.messages$.subscribe({
        next: (m) => {
          echoed++;
          conn.send$.next(m);
        },
        error: (e: Error) => bump(connectionErrors, e.name),
      });
      conn.closed$.subscribe(() => connections--);
    },
    error: (e: Error) => emit({ type: 'error', message: `listen: ${e.message}` }),
  });

  await box.next('mark');
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loopDelay.enable();
  const gc = watchGc();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let rssMax = 0;
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage().rss)), 500);
  await box.next('report');
  clearInterval(sampler);
  const cpu = cpuSeconds(cpu0);
  const memory = process.memoryUsage();
  rssMax = Math.max(rssMax, memory.rss);
  const report: ListenerReport = {
    cpuPercent: (100 * cpu.total) / ((performance.now() - t0) / 1000),
    cpuSeconds: cpu.total,
    rssMiB: memory.rss / MIB,
    rssMaxMiB: rssMax / MIB,
    heapUsedMiB: memory.heapUsed / MIB,
    eventLoop: loopDelaySummary(loopDelay),
    gc: gc(),
    connections,
    accepted,
    echoed,
    connectionErrors,
    endpoint: endpoint ?? { datagramsReceived: 0, invalidDatagrams: 0, strangerDatagrams: 0, refusedConnections: 0, sendErrors: 0, unauthenticatedDatagrams: 0, handshakeFailures: 0, retriesSent: 0, memoryInUse: 0 },
  };
  emit({ type: 'report', report });
}

async function client(flags: Flags): Promise<void> {
  const box = new CommandBox();
  childGuard(flagNumber(flags, 'limit', 300_000), box.handle);
  const port = flagNumber(flags, 'port', 0);
  const n = flagNumber(flags, 'conns', 1000);
  const ramp = flagNumber(flags, 'ramp', 500); // connections per second; 0 = all at once
  const seconds = flagNumber(flags, 'seconds', 30);
  const keepSamples = flags.has('samples');
  const stepLags: number[] = [];

  const conns: (Connection | undefined)[] = new Array<Connection | undefined>(n).fill(undefined);
  const connectFailures: Record<string, number> = {};
  const closedWithError: Record<string, number> = {};
  const connectMs: number[] = [];
  const rtts: number[] = [];
  const settledRtts: number[] = [];
  let settledFrom = Infinity;
  let open = 0;
  let failed = 0;
  let sent = 0;
  let received = 0;
  let measuring = false;

  const onEcho = (m: Uint8Array): void => {
    received++;
    if (!measuring) return;
    const view = new DataView(m.buffer, m.byteOffset, m.byteLength);
    const sentAt = view.getFloat64(0);
    const rtt = performance.now() - sentAt;
    rtts.push(rtt);
    if (sentAt >= settledFrom) settledRtts.push(rtt);
  };
  const openOne = (i: number): void => {
    const t = performance.now();
    let opened = false;
    connect({ host: HOST, port }).subscribe({
      next: (conn) => {
        opened = true;
        connectMs.push(performance.now() - t);
        conns[i] = conn;
        open++;
        conn.messages$.subscribe({ next: onEcho, error: () => undefined });
        conn.closed$.subscribe((info) => {
          if (info.error !== undefined) bump(closedWithError, info.error.name);
        });
      },
      // connect() also errors when an open connection ends abnormally: closed$ counted that one.
      error: (e: Error) => {
        if (opened) return;
        failed++;
        bump(connectFailures, e.name);
      },
    });
  };

  const rampStart = performance.now();
  if (ramp <= 0) {
    for (let i = 0; i < n; i++) openOne(i);
  } else {
    // Every 10 ms, open the connections due by then.
    let opened = 0;
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const due = Math.min(n, Math.floor(((performance.now() - rampStart) / 1000) * ramp) + 1);
        while (opened < due) openOne(opened++);
        if (opened === n) {
          clearInterval(timer);
          resolve();
        }
      }, 10);
    });
  }
  const deadline = performance.now() + 15_000;
  while (open + failed < n && performance.now() < deadline) await sleep(50);
  const rampSeconds = (performance.now() - rampStart) / 1000;
  emit({ type: 'connected', open, failed, rampSeconds });

  await box.next('go');
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loopDelay.enable();
  const gc = watchGc();
  measuring = true;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  settledFrom = t0 + SETTLE_MS;
  const payload = new Uint8Array(MESSAGE);
  await new Promise<void>((resolve) => {
    let tick = 0;
    const step = (): void => {
      stepLags.push(performance.now() - (t0 + tick * 10));
      const bucket = tick % BUCKETS;
      for (let i = bucket; i < n; i += BUCKETS) {
        const conn = conns[i];
        if (conn === undefined) continue;
        const message = payload.slice();
        const view = new DataView(message.buffer);
        view.setUint32(8, i);
        view.setUint32(12, sent);
        view.setFloat64(0, performance.now());
        conn.send$.next(message);
        sent++;
      }
      tick++;
      if (performance.now() - t0 >= seconds * 1000) return resolve();
      setTimeout(step, Math.max(0, t0 + tick * 10 - performance.now()));
    };
    step();
  });
  const cpu = cpuSeconds(cpu0);
  const steadySeconds = (performance.now() - t0) / 1000;
  emit({ type: 'steady-done' });
  const drainUntil = performance.now() + DRAIN_MS;
  while (received < sent && performance.now() < drainUntil) await sleep(50);
  let packetsSent = 0;
  let pingsSent = 0;
  let retransmissions = 0;
  for (const conn of conns) {
    if (conn === undefined) continue;
    const st = conn.stats;
    packetsSent += st.packetsSent;
    pingsSent += st.pingsSent;
    retransmissions += st.retransmissions;
  }
  const report: ClientReport = {
    conns: n,
    open,
    connectFailures,
    connectMs: summarize(connectMs),
    rampSeconds,
    sent,
    received,
    steadySeconds,
    rtt: summarize(rtts),
    rttSettled: summarize(settledRtts),
    cpuPercent: (100 * cpu.total) / steadySeconds,
    rssMiB: process.memoryUsage().rss / MIB,
    eventLoop: loopDelaySummary(loopDelay),
    gc: gc(),
    closedWithError,
    packetsSent,
    pingsSent,
    retransmissions,
    stepLag: summarize(stepLags),
    ...(keepSamples ? { rttSamples: rtts.map(centi), rttSettledSamples: settledRtts.map(centi) } : {}),
  };
  emit({ type: 'report', report });
}

// ---- orchestration -----------------------------------------------------------------------------

/** One client process's share of the load, and what it managed. */
interface ClientShare {
  readonly conns: number;
  /** Messages per second it was asked to offer (one per connection per second). */
  readonly askedRate: number;
  readonly offeredRate: number;
  /** Echoes back per second of the steady phase. */
  readonly achievedRate: number;
  readonly cpuPercent: number;
  readonly stepLagP99: number;
}

interface Outcome {
  readonly conns: number;
  readonly clients: number;
  /** System-wide UDP RcvbufErrors during ramp-up and during the steady phase. */
  readonly kernelDrops?: { ramp: number; steady: number };
  readonly error?: string;
  readonly listener?: ListenerReport;
  /** The clients' reports merged: counts summed, round trips over all samples, CPU summed. */
  readonly client?: Omit<ClientReport, 'rttSamples' | 'rttSettledSamples'>;
  readonly shares?: ClientShare[];
  /** The offered rate fell short of the asked one: the run measured a lighter load than it names. */
  readonly offeredShort?: boolean;
}

function sumRecords(records: readonly Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of records) for (const [k, v] of Object.entries(r)) out[k] = (out[k] ?? 0) + v;
  return out;
}

const centi = (ms: number): number => Math.round(ms * 100) / 100;

function merge(reports: readonly ClientReport[]): Omit<ClientReport, 'rttSamples' | 'rttSettledSamples'> {
  const sum = (f: (r: ClientReport) => number): number => reports.reduce((a, r) => a + f(r), 0);
  const maxOf = (f: (r: ClientReport) => number): number => Math.max(...reports.map(f));
  const rtts: number[] = [];
  for (const r of reports) for (const x of r.rttSamples ?? []) rtts.push(x);
  const settled: number[] = [];
  for (const r of reports) for (const x of r.rttSettledSamples ?? []) settled.push(x);
  const connectMs = reports.map((r) => r.connectMs);
  return {
    conns: sum((r) => r.conns),
    open: sum((r) => r.open),
    connectFailures: sumRecords(reports.map((r) => r.connectFailures)),
    // Per-client summaries cannot be merged exactly: the worst client's figures.
    connectMs: { ...connectMs[0]!, p50: Math.max(...connectMs.map((c) => c.p50)), p99: Math.max(...connectMs.map((c) => c.p99)), max: Math.max(...connectMs.map((c) => c.max)) },
    rampSeconds: maxOf((r) => r.rampSeconds),
    sent: sum((r) => r.sent),
    received: sum((r) => r.received),
    steadySeconds: maxOf((r) => r.steadySeconds),
    rtt: summarize(rtts),
    rttSettled: summarize(settled),
    cpuPercent: sum((r) => r.cpuPercent),
    rssMiB: sum((r) => r.rssMiB),
    eventLoop: { p50: maxOf((r) => r.eventLoop.p50), p99: maxOf((r) => r.eventLoop.p99), max: maxOf((r) => r.eventLoop.max) },
    gc: { count: sum((r) => r.gc.count), totalMs: sum((r) => r.gc.totalMs), maxMs: maxOf((r) => r.gc.maxMs) },
    closedWithError: sumRecords(reports.map((r) => r.closedWithError)),
    packetsSent: sum((r) => r.packetsSent),
    pingsSent: sum((r) => r.pingsSent),
    retransmissions: sum((r) => r.retransmissions),
    stepLag: summarize([]),
  };
}

/** `conns` split over `clients` as evenly as whole connections allow. */
function split(conns: number, clients: number): number[] {
  return Array.from({ length: clients }, (_, i) => Math.floor(conns / clients) + (i < conns % clients ? 1 : 0));
}

async function runOne(conns: number, seconds: number, ramp: number, clients: number): Promise<Outcome> {
  const rampSeconds = ramp > 0 ? conns / ramp : 0;
  const limit = Math.round((rampSeconds + seconds + 60) * 1000);
  const lst = new Child(`many:${conns}:listener`, __filename, ['--role', 'listener', '--limit', String(limit)], { timeoutMs: limit + 5000 });
  const clis: Child[] = [];
  const udp0 = udpCounters();
  try {
    const ready = await lst.next<Message & { port: number }>('ready', 10_000);
    const shares = split(conns, clients).filter((n) => n > 0);
    // Each client ramps at its share of --ramp, so all of them together ramp at --ramp.
    shares.forEach((n, i) => {
      const share = ramp > 0 ? Math.max(1, (ramp * n) / conns) : 0;
      clis.push(
        new Child(
          `many:${conns}:client${i}`,
          __filename,
          ['--role', 'client', '--port', String(ready.port), '--conns', String(n), '--ramp', String(share), '--seconds', String(seconds), '--limit', String(limit), '--samples'],
          { timeoutMs: limit + 5000 },
        ),
      );
    });
    const connected = await Promise.all(clis.map((c) => c.next<Message & { open: number; failed: number; rampSeconds: number }>('connected', limit)));
    const open = connected.reduce((a, c) => a + c.open, 0);
    const failed = connected.reduce((a, c) => a + c.failed, 0);
    process.stderr.write(`many ${conns}: ${open} open, ${failed} failed after ${fmt(Math.max(...connected.map((c) => c.rampSeconds)))} s (${clis.length} client processes)\n`);
    const udp1 = udpCounters();
    lst.send({ type: 'mark' });
    for (const cli of clis) cli.send({ type: 'go' });
    await Promise.all(clis.map((cli) => cli.next('steady-done', limit)));
    const udp2 = udpCounters();
    lst.send({ type: 'report' });
    const listenerReport = (await lst.next<Message & { report: ListenerReport }>('report', 10_000)).report;
    const reports = await Promise.all(clis.map(async (cli) => (await cli.next<Message & { report: ClientReport }>('report', DRAIN_MS + 30_000)).report));
    const kernelDrops = udp0 && udp1 && udp2 ? { ramp: udp1.rcvbufErrors - udp0.rcvbufErrors, steady: udp2.rcvbufErrors - udp1.rcvbufErrors } : undefined;
    const clientShares: ClientShare[] = reports.map((r) => ({
      conns: r.conns,
      askedRate: r.conns,
      offeredRate: r.sent / r.steadySeconds,
      achievedRate: r.received / r.steadySeconds,
      cpuPercent: r.cpuPercent,
      stepLagP99: r.stepLag?.p99 ?? NaN,
    }));
    const offeredShort = clientShares.some((c) => c.offeredRate < OFFERED_MIN_SHARE * c.askedRate);
    return { conns, clients: clis.length, listener: listenerReport, client: merge(reports), shares: clientShares, offeredShort, ...(kernelDrops ? { kernelDrops } : {}) };
  } catch (error) {
    return { conns, clients, error: error instanceof Error ? error.message.split('\n')[0]! : String(error) };
  } finally {
    await Promise.all([...clis.map((cli) => cli.stop(2000)), lst.stop(2000)]);
  }
}

function counts(record: Record<string, number> | undefined): string {
  const entries = Object.entries(record ?? {});
  return entries.length === 0 ? '0' : entries.map(([k, v]) => `${v} ${k}`).join(', ');
}

/** Idle connections on the VirtualNetwork, in a process of their own (full GCs need --expose-gc). */
async function runIdle(n: number): Promise<IdleReport | { error: string }> {
  const limit = 600_000;
  const child = new Child(`many:idle:${n}`, __filename, ['--role', 'idle', '--idle', String(n), '--limit', String(limit)], { timeoutMs: limit, nodeArgs: ['--expose-gc', '--max-old-space-size=8192'] });
  try {
    return (await child.next<Message & { report: IdleReport }>('report', limit)).report;
  } catch (error) {
    return { error: error instanceof Error ? error.message.split('\n')[0]! : String(error) };
  } finally {
    await child.stop(2000);
  }
}

function idleOf(flags: Flags): number {
  return flagNumber(flags, 'idle', flags.has('quick') ? 10_000 : 100_000);
}

function sizesOf(flags: Flags): number[] {
  return (flagString(flags, 'conns') ?? (flags.has('quick') ? '1000' : '1000,10000')).split(',').map(Number);
}

async function run(flags: Flags): Promise<BenchResult> {
  const quick = flags.has('quick');
  const sizes = sizesOf(flags);
  const seconds = flagNumber(flags, 'seconds', quick ? 10 : 30);
  const ramp = flagNumber(flags, 'ramp', 500);
  const clientsFlag = flagString(flags, 'clients');
  const outcomes: Outcome[] = [];
  for (const size of sizes) outcomes.push(await runOne(size, seconds, ramp, clientsFlag === undefined ? defaultClients(size) : Number(clientsFlag)));
  const idleCount = idleOf(flags);
  const idle = idleCount > 0 ? await runIdle(idleCount) : undefined;

  const rows = outcomes.map((o) => {
    if (o.error !== undefined || o.listener === undefined || o.client === undefined) return [String(o.conns), `FAILED: ${o.error ?? '?'}`, '', '', '', '', '', '', '', '', '', '', '', ''];
    const c = o.client;
    const l = o.listener;
    const offered = c.sent / c.steadySeconds;
    return [
      String(o.conns),
      `${c.open}${c.open < c.conns ? ` (${counts(c.connectFailures)})` : ''}`,
      fmt(l.cpuPercent),
      fmt(l.cpuPercent / (offered / 1000), 1),
      `${fmt(l.rssMiB, 0)} (max ${fmt(l.rssMaxMiB, 0)})`,
      fmt(c.rtt.p50 / 2, 2),
      fmt(c.rtt.p99 / 2, 2),
      fmt(c.rtt.max / 2, 1),
      fmt(c.rttSettled.p99 / 2, 2),
      `${c.received}/${c.sent}${c.received === c.sent ? ' ✓' : ' ✗'}`,
      `${fmt(offered, 0)} of ${c.conns}${o.offeredShort ? ' ✗ SHORT' : ' ✓'}`,
      String(o.clients),
      fmt(c.cpuPercent),
      o.kernelDrops ? `${o.kernelDrops.ramp} / ${o.kernelDrops.steady}` : 'n/a',
    ];
  });
  const notes: string[] = [];
  for (const o of outcomes) {
    if (o.client === undefined || o.listener === undefined) continue;
    if (o.offeredShort) {
      notes.push(
        `- **${o.conns}: FAILED — the load generator offered less than ${OFFERED_MIN_SHARE * 100} % of the asked rate** (${fmt(o.client.sent / o.client.steadySeconds, 0)} of ${o.client.conns} msg/s): ` +
          `the listener figures describe a lighter load; run with more --clients, or on a quieter machine.`,
      );
    }
    const perClient = (o.shares ?? []).map((s, i) => `#${i} ${s.conns} conns: asked ${s.askedRate}, offered ${fmt(s.offeredRate, 0)}, echoed ${fmt(s.achievedRate, 0)} msg/s, CPU ${fmt(s.cpuPercent)} %, send-step lag p99 ${fmt(s.stepLagP99)} ms`);
    notes.push(`- ${o.conns}, per client process: ${perClient.join('; ')}.`);
    notes.push(
      `- ${o.conns}: ramp-up took ${fmt(o.client.rampSeconds)} s (connect time p50 ${fmt(o.client.connectMs.p50)} / p99 ${fmt(o.client.connectMs.p99)} / max ${fmt(o.client.connectMs.max)} ms, worst client); ` +
        `event-loop delay p99/max: listener ${fmt(o.listener.eventLoop.p99)} / ${fmt(o.listener.eventLoop.max)} ms, clients (worst) ${fmt(o.client.eventLoop.p99)} / ${fmt(o.client.eventLoop.max)} ms; ` +
        `GC during the steady phase: listener ${fmt(o.listener.gc.totalMs, 0)} ms in ${o.listener.gc.count} pauses (max ${fmt(o.listener.gc.maxMs)}), clients ${fmt(o.client.gc.totalMs, 0)} ms in ${o.client.gc.count} (max ${fmt(o.client.gc.maxMs)}); ` +
        `listener accepted ${o.listener.accepted}, echoed ${o.listener.echoed}; client connections closed with error: ${counts(o.client.closedWithError)}; ` +
        `listener connection errors: ${counts(o.listener.connectionErrors)}; client packets sent ${o.client.packetsSent} (pings ${o.client.pingsSent}, retransmissions ${o.client.retransmissions}); ` +
        `listener endpoint: ${o.listener.endpoint.datagramsReceived} datagrams, ${o.listener.endpoint.strangerDatagrams} stranger, ${o.listener.endpoint.sendErrors} send errors.`,
    );
  }
  const markdown = [
    `### Many connections, loopback: one ${MESSAGE}-byte message per connection per second for ${seconds} s, echoed (ramp-up ${ramp > 0 ? `${ramp} connections/s` : 'all at once'})`,
    '',
    table(
      ['connections', 'open', 'listener CPU % (1 core = 100)', 'listener CPU % per 1k msg/s', 'listener RSS MiB', 'latency p50 ms', 'p99 ms', 'max ms', `p99 ms from ${SETTLE_MS / 1000} s on`, 'echoes received/sent', 'msgs/s offered of asked', 'client processes', 'clients CPU % (sum)', 'kernel rcvbuf drops ramp / steady'],
      rows,
    ),
    '',
    `Latency = client-measured round trip / 2 during the steady phase, over every client's samples; "from ${SETTLE_MS / 1000} s on" leaves out messages sent in the first ${SETTLE_MS / 1000} s, when every idle connection sends its first message at once (slow: code the JIT has not optimized yet, each connection's first packet state). Listener CPU = process.cpuUsage() over the steady phase / wall time. ` +
      `Every connection is its own client UDP socket; the connections are split over the client processes (default one per ${CONNS_PER_CLIENT}; all share the machine's cores with the listener). Echoes counted after up to ${DRAIN_MS / 1000} s of drain. ` +
      `Sends are spread over ${BUCKETS} slots of 10 ms; "offered" is what the clients managed to send, "asked" one per connection per second: below ${OFFERED_MIN_SHARE * 100} % the row is marked SHORT and the run failed. Kernel drops = system-wide /proc/net/snmp Udp RcvbufErrors deltas.`,
    '',
    ...notes,
    ...(idle === undefined ? [] : ['', idleMarkdown(idle)]),
  ].join('\n');
  return { name: 'many', title: 'Many connections', markdown, data: { seconds, ramp, outcomes, idle }, seconds: 0 };
}

function idleMarkdown(idle: IdleReport | { error: string }): string {
  if ('error' in idle) return `Idle connections on the VirtualNetwork: FAILED: ${idle.error}`;
  const kib = (b: number): string => fmt(b / 1024, 1);
  return [
    `Idle connections on the VirtualNetwork (one process, virtual time, 10 s idle after opening):`,
    '',
    table(
      ['connections', 'open', 'live heap per pair KiB', 'per listener-side connection KiB', 'heap MiB', 'RSS MiB', 'scheduled actions while idle', 'opening took s'],
      [[String(idle.connections), String(idle.open), kib(idle.heapPerPair), kib(idle.heapPerListenerConnection), fmt(idle.heapMiB, 0), fmt(idle.rssMiB, 0), String(idle.scheduledActions), fmt(idle.openSeconds)]],
    ),
    '',
    `A pair = a listener-side and a starter-side connection with the starter's socket; live heap = heapUsed + arrayBuffers after full GCs, over the process before the first connect. ` +
      `The listener-side figure is measured after the starters' sockets went silently (the listener's connections stay up until their ping timeout).`,
  ].join('\n');
}

benchMain(
  (flags) => {
    const seconds = flagNumber(flags, 'seconds', flags.has('quick') ? 10 : 30);
    const ramp = flagNumber(flags, 'ramp', 500);
    return sizesOf(flags).reduce((sum, s) => sum + ((ramp > 0 ? s / ramp : 0) + seconds + 90) * 1000, 0) + (idleOf(flags) > 0 ? 600_000 : 0);
  },
  run,
  { listener, client, idle: (flags) => idleRole(flagNumber(flags, 'idle', 10_000)), virtual: (flags) => virtualRole(flagNumber(flags, 'conns', 10_000), flagNumber(flags, 'seconds', 10)) },
);
