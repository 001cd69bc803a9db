/**
 * Over a real kernel path: two network namespaces (ruA 10.77.0.1, ruB 10.77.0.2) joined by the
 * link emulator in shared/tools/linkem, 10 ms one way, random or bursty loss each way. Every
 * transport runs in the same run on the same path, interleaved per seed: rx-rudp (public API),
 * Linux TCP with CUBIC and with BBR (node:net, setNoDelay), udx-native, and in the stream case a
 * raw UDP stream with no recovery (what the path itself delivers, and when). The receiver runs
 * in ruA, the sender in ruB, each in its own child process (bench/path-peer.ts).
 *
 * - stream: 1 KiB messages at 200 msg/s; one-way latency from a CLOCK_MONOTONIC stamp in each
 *   message, p50 / p90 / p99 / max, every message checked delivered once and in order.
 * - bulk: 1 MiB messages as fast as each transport goes; goodput, with a hard time limit per run
 *   (a run that does not finish reports what it delivered in the time).
 * - for every run: datagrams and bytes each way as linkem counted them (SIGUSR1 before and after).
 * - bursty loss: a 200/s echoed clock flow beside the transport, so linkem's per-packet
 *   Gilbert-Elliott chain steps in time (its datagrams are counted and taken out of the figures).
 *
 *   node bench/dist/bench/path.js [--quick] [--seeds 3] [--cases stream,bulk]
 *     [--conditions loss5,loss2,burst5] [--transports rudp,tcp-cubic,tcp-bbr,udx,udp]
 *     [--seconds 10] [--mib 48] [--mib-5 16] [--run-limit 60] [--budget 1500] [--first-seed 1]
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { DEFAULTS } from '../lib/index';
import { benchMain, flagNumber, flagString, machineInfo, table, type BenchResult, type Flags } from './lib/common';
import { IP_A, IP_B, LINKEM_DIR, LinkPath, NS_A, NS_B, counterDelta, impairmentArgs, linkemUnavailable, type Impairment, type LinkDelta } from './lib/linkem';
import { Child, sleep, type Message } from './lib/proc';
import { fmt, max, median, min, summarize } from './lib/stats';

const PEER = path.join(__dirname, 'path-peer.js');
const MIB = 1024 * 1024;
const DELAY_MS = 10;
const RATE = 200;
const SIZE = 1024;
const SERVER_PORT = 47000;
/** udx has no handshake, so the sender's port is fixed and known to the receiver up front. */
const UDX_CLIENT_PORT = 47001;
/**
 * How long after the last send a reliable stream may take to deliver the rest. Long: under the
 * bursty loss a TCP or udx sender in retransmission backoff can stall for seconds (see the notes),
 * and such a run should show its latencies, not fail for want of patience.
 */
const STREAM_DRAIN_MS = 20_000;

interface TransportSpec {
  readonly label: string;
  readonly peer: 'rudp' | 'tcp' | 'udx' | 'udp';
  /** TCP congestion control set in both namespaces for this transport. */
  readonly cc?: 'cubic' | 'bbr';
  readonly streamOnly?: boolean;
}

const TRANSPORTS: Record<string, TransportSpec> = {
  rudp: { label: 'rx-rudp', peer: 'rudp' },
  'tcp-cubic': { label: 'TCP CUBIC', peer: 'tcp', cc: 'cubic' },
  'tcp-bbr': { label: 'TCP BBR', peer: 'tcp', cc: 'bbr' },
  udx: { label: 'udx-native', peer: 'udx' },
  udp: { label: 'raw UDP (no recovery)', peer: 'udp', streamOnly: true },
};

interface Condition {
  readonly key: string;
  readonly label: string;
  readonly imp: Impairment;
  /** Datagrams per second of the clock flow beside the transport (see path-peer.ts startClock). */
  readonly clock?: number;
}

const CLOCK_PORT = 47002;
/** A clock datagram as linkem counts it: 16 bytes of payload + UDP and IPv4 headers. */
const CLOCK_IP_BYTES = 16 + 8 + 20;
const CLOCK_RATE = 200;

/**
 * Gilbert-Elliott: P(good→bad) 1.3 %, P(bad→good) 25 %, every packet lost in the bad state, none in
 * the good one: 1.3 / (1.3 + 25) = 4.9 % of packets lost on average, in bursts of 4 packets on
 * average (geometric), i.e. ~20 ms of a 200 msg/s stream gone at once.
 */
const BURST = `delay=${DELAY_MS},gep=1.3,ger=25,gelg=0,gelb=100`;

const STREAM_CONDITIONS: readonly Condition[] = [
  { key: 'loss5', label: '5 % each way', imp: { both: `delay=${DELAY_MS},loss=5` } },
  { key: 'loss2', label: '2 % each way', imp: { both: `delay=${DELAY_MS},loss=2` } },
  { key: 'burst5', label: 'bursty 4.9 % each way (Gilbert-Elliott)', imp: { both: BURST }, clock: CLOCK_RATE },
];
const BULK_CONDITIONS: readonly Condition[] = [
  { key: 'loss2', label: '2 % each way', imp: { both: `delay=${DELAY_MS},loss=2` } },
  { key: 'loss5', label: '5 % each way', imp: { both: `delay=${DELAY_MS},loss=5` } },
];

interface Traffic {
  /** B → A: the sender's data. */
  readonly data: { readonly datagrams: number; readonly bytes: number; readonly lost: number };
  /** A → B: acknowledgements and whatever else the receiver sends. */
  readonly reverse: { readonly datagrams: number; readonly bytes: number; readonly lost: number };
  /** Packets linkem dropped for reasons other than the configured loss (queue, memory, TUN write): should be 0. */
  readonly harnessDrops: number;
  readonly linkemCpuSeconds: number;
  /** The clock flow's datagrams, already taken out of the figures above. */
  readonly clock?: { readonly sent: number; readonly echoed: number; readonly received: number };
}

interface RunRecord {
  readonly case: 'stream' | 'bulk';
  readonly condition: string;
  readonly transport: string;
  readonly seed: number;
  readonly ok: boolean;
  readonly error?: string;
  readonly traffic?: Traffic;
  readonly latency?: { p50: number; p90: number; p99: number; max: number; mean: number; count: number };
  readonly delivered?: number;
  readonly expected?: number;
  readonly duplicates?: number;
  readonly outOfOrder?: number;
  readonly finished?: boolean;
  readonly bytes?: number;
  readonly seconds?: number;
  readonly goodputMBs?: number;
  readonly senderCpu?: number;
  readonly receiverCpu?: number;
  readonly sender?: Record<string, unknown>;
  readonly receiver?: Record<string, unknown>;
  /** What `ss -ti` showed on the sender's TCP socket at the end of the run. */
  readonly tcpInfo?: { cc?: string; retrans?: number; bytesRetrans?: number; mss?: number };
  readonly payloadBytes?: number;
}

function traffic(d: LinkDelta, clock?: Traffic['clock']): Traffic {
  const harness = (x: LinkDelta['ab']): number => x.drop_queue + x.drop_mem + x.drop_write;
  // The clock's datagrams are counted exactly at both ends: sent by B, echoed by A (= arrived
  // at A), received back by B. Their share of linkem's counters comes off.
  const c = clock ?? { sent: 0, echoed: 0, received: 0 };
  return {
    data: { datagrams: d.ba.in_pkts - c.sent, bytes: d.ba.in_bytes - c.sent * CLOCK_IP_BYTES, lost: d.ba.drop_loss - (c.sent - c.echoed) },
    reverse: { datagrams: d.ab.in_pkts - c.echoed, bytes: d.ab.in_bytes - c.echoed * CLOCK_IP_BYTES, lost: d.ab.drop_loss - (c.echoed - c.received) },
    harnessDrops: harness(d.ab) + harness(d.ba),
    linkemCpuSeconds: d.cpuSeconds,
    ...(clock === undefined ? {} : { clock }),
  };
}

/** cc name, retransmitted segments and bytes from `ss -tin` of the sender's connection. */
function tcpInfo(link: LinkPath): RunRecord['tcpInfo'] {
  const out = link.exec(NS_B, ['ss', '-tin', 'dst', IP_A]);
  if (out === undefined) return undefined;
  const text = out.replace(/\s+/g, ' ');
  const cc = /\b(cubic|bbr|reno)\b/.exec(text)?.[1];
  const retrans = /\bretrans:\d+\/(\d+)/.exec(text)?.[1];
  const bytesRetrans = /\bbytes_retrans:(\d+)/.exec(text)?.[1];
  const mss = /\bmss:(\d+)/.exec(text)?.[1];
  return {
    ...(cc === undefined ? {} : { cc }),
    retrans: retrans === undefined ? 0 : Number(retrans),
    bytesRetrans: bytesRetrans === undefined ? 0 : Number(bytesRetrans),
    ...(mss === undefined ? {} : { mss: Number(mss) }),
  };
}

interface RunParams {
  readonly link: LinkPath;
  readonly kind: 'stream' | 'bulk';
  readonly condition: Condition;
  readonly transport: string;
  readonly seed: number;
  readonly count: number; // stream messages
  readonly total: number; // bulk bytes
  readonly limitMs: number; // bulk: per-run time limit; stream: the whole run's bound
  readonly grants: Record<string, unknown>;
}

async function runOne(p: RunParams): Promise<RunRecord> {
  const spec = TRANSPORTS[p.transport]!;
  const base = { case: p.kind, condition: p.condition.key, transport: p.transport, seed: p.seed } as const;
  p.link.up(p.condition.imp, p.seed); // resets linkem's random streams: each transport starts from the same state
  if (spec.cc !== undefined) {
    // Outside the initial namespace the kernel lets the default be only an "allowed" algorithm.
    p.link.allowCongestionControl(spec.cc);
    for (const ns of [NS_A, NS_B]) p.link.setSysctl(ns, 'net.ipv4.tcp_congestion_control', spec.cc);
  }
  const childLimit = p.limitMs + 30_000;
  const common = ['--transport', spec.peer, '--case', p.kind, '--count', String(p.count), '--rate', String(RATE), '--size', String(SIZE), '--total', String(p.total), '--limit', String(childLimit)];
  const clockArgs = p.condition.clock === undefined ? [] : ['--clock-rate', String(p.condition.clock), '--clock-port', String(CLOCK_PORT)];
  const server = new Child(`path:${p.transport}:server`, PEER, ['--role', 'server', '--host', IP_A, '--port', String(SERVER_PORT), '--peer-host', IP_B, '--peer-port', String(UDX_CLIENT_PORT), ...clockArgs, ...common], { timeoutMs: childLimit + 5000, netns: NS_A });
  let client: Child | undefined;
  try {
    const ready = await server.next<Message & { port: number; recvBuffer?: number; sendBuffer?: number }>('ready', 15_000);
    if (ready.recvBuffer !== undefined) p.grants[`${spec.peer} receive buffer (getsockopt)`] = ready.recvBuffer;
    if (ready.sendBuffer !== undefined && spec.peer === 'udx') p.grants[`${spec.peer} send buffer (getsockopt)`] = ready.sendBuffer;
    const before = await p.link.counters();
    client = new Child(`path:${p.transport}:client`, PEER, ['--role', 'client', '--host', IP_A, '--port', String(ready.port), '--self-host', IP_B, '--self-port', String(UDX_CLIENT_PORT), ...clockArgs, ...common], { timeoutMs: childLimit + 5000, netns: NS_B });
    // Rejects when the client reports an error or exits: raced against what the server says.
    const clientFailure = client.next('never', childLimit + 10_000);
    clientFailure.catch(() => undefined);
    const orFail = <T>(promise: Promise<T>): Promise<T> => Promise.race([promise, clientFailure as Promise<never>]);

    let finished = true;
    let deadlineNs = 0n;
    if (p.kind === 'stream') {
      await orFail(client.next('sent', p.limitMs));
      if (spec.streamOnly === true) await sleep(500); // nothing is resent: only the last ones' delay to wait for
      else finished = await orFail(server.next('done', STREAM_DRAIN_MS)).then(() => true, () => false);
    } else {
      finished = await orFail(server.next('done', p.limitMs)).then(
        () => true,
        (error: unknown) => {
          if (error instanceof Error && !/no 'done' message/.test(error.message)) throw error;
          return false;
        },
      );
      deadlineNs = process.hrtime.bigint();
    }
    let clock: Traffic['clock'];
    if (p.condition.clock !== undefined) {
      client.send({ type: 'clock-stop' });
      const c = await client.next<Message & { sent: number; received: number }>('clock', 3000);
      server.send({ type: 'clock' });
      const e = await server.next<Message & { echoed: number }>('clock', 3000);
      clock = { sent: c.sent, echoed: e.echoed, received: c.received };
    }
    await sleep(200); // the last acknowledgements cross the link before the second snapshot
    const after = await p.link.counters();
    const info = spec.peer === 'tcp' ? tcpInfo(p.link) : undefined;
    server.send({ type: 'finish' });
    const report = await server.next<Message & Record<string, unknown>>('report', 5000);
    client.send({ type: 'exit' });
    const stats = await client.next<Message & { cpuSeconds: number; transportStats: Record<string, unknown> }>('stats', 5000).catch(() => undefined);
    const sent = await client.next<Message & { startNs: number }>('sent', 1).catch(() => undefined);
    const started = await client.next<Message & { startNs: number }>('started', 1).catch(() => undefined);
    const t = traffic(counterDelta(before, after), clock);
    const shared = {
      ...base,
      traffic: t,
      ...(info === undefined ? {} : { tcpInfo: info }),
      ...(stats === undefined ? {} : { senderCpu: stats.cpuSeconds, sender: stats.transportStats }),
      receiverCpu: Number(report['cpuSeconds'] ?? NaN),
      receiver: (report['transportStats'] ?? {}) as Record<string, unknown>,
    };
    if (p.kind === 'stream') {
      const latencies = (report['latencies'] ?? []) as number[];
      // BENCH_PATH_DUMP=dir keeps every message's latency (in arrival order), one file per run.
      const dump = process.env['BENCH_PATH_DUMP'];
      if (dump !== undefined) mkdirSync(dump, { recursive: true });
      if (dump !== undefined) writeFileSync(path.join(dump, `${p.kind}-${p.condition.key}-${p.transport}-seed${p.seed}.json`), JSON.stringify(latencies));
      const s = summarize(latencies);
      const delivered = Number(report['received']);
      const duplicates = Number(report['duplicates']);
      const outOfOrder = Number(report['outOfOrder']);
      const complete = delivered === p.count && duplicates === 0 && outOfOrder === 0;
      const ok = spec.streamOnly === true || complete;
      return {
        ...shared,
        ok,
        ...(ok ? {} : { error: `${delivered} of ${p.count} delivered, ${duplicates} duplicates, ${outOfOrder} out of order${finished ? '' : ` (not all within ${STREAM_DRAIN_MS / 1000} s of the last send)`}` }),
        latency: { p50: s.p50, p90: s.p90, p99: s.p99, max: s.max, mean: s.mean, count: s.count },
        delivered,
        expected: p.count,
        duplicates,
        outOfOrder,
        payloadBytes: delivered * SIZE,
      };
    }
    const bytes = Number(report['bytes']);
    const bad = Number(report['bad']);
    const startNs = BigInt(Math.round(started?.startNs ?? sent?.startNs ?? NaN));
    const endNs = finished ? BigInt(Math.round(Number(report['lastNs']))) : deadlineNs;
    const seconds = Number(endNs - startNs) / 1e9;
    const ok = bad === 0 && (!finished || bytes >= p.total);
    return {
      ...shared,
      ok,
      ...(ok ? {} : { error: `verification failed: ${bytes} of ${p.total} bytes, ${bad} bad samples` }),
      finished,
      bytes,
      seconds,
      goodputMBs: bytes / 1e6 / seconds,
      payloadBytes: bytes,
    };
  } catch (error) {
    return { ...base, ok: false, error: error instanceof Error ? error.message.split('\n')[0]! : String(error) };
  } finally {
    client?.send({ type: 'exit' });
    await Promise.all([client?.stop(1500), server.stop(1500)]);
  }
}

// ---- report ------------------------------------------------------------------------------------------

const range = (values: readonly number[], digits = 1): string =>
  values.length > 1 ? `${fmt(min(values), digits)}–${fmt(max(values), digits)}` : values.length === 1 ? fmt(values[0], digits) : '–';
const med = (values: readonly number[]): number => median(values.filter((v) => Number.isFinite(v)));
const kib = (bytes: number): string => (bytes >= 10 * MIB ? `${fmt(bytes / MIB, 1)} MiB` : `${fmt(bytes / 1024, 0)} KiB`);

/** Retransmissions as each transport counts them (its own counter, or the kernel's for TCP). */
function retransmissions(r: RunRecord): number {
  if (r.tcpInfo !== undefined) return r.tcpInfo.retrans ?? NaN;
  const s = r.sender ?? {};
  if (typeof s['retransmissions'] === 'number') return s['retransmissions'];
  if (typeof s['retransmits'] === 'number') return s['retransmits'];
  return NaN;
}

function trafficCells(runs: readonly RunRecord[]): string[] {
  const t = runs.map((r) => r.traffic).filter((x): x is Traffic => x !== undefined);
  const payload = med(runs.map((r) => r.payloadBytes ?? NaN));
  const dataBytes = med(t.map((x) => x.data.bytes));
  const revBytes = med(t.map((x) => x.reverse.bytes));
  const lost = med(t.map((x) => (100 * x.data.lost) / x.data.datagrams));
  return [
    `${fmt(med(t.map((x) => x.data.datagrams)), 0)} / ${kib(dataBytes)}`,
    `${fmt(med(t.map((x) => x.reverse.datagrams)), 0)} / ${kib(revBytes)}`,
    fmt((dataBytes + revBytes) / payload, 2),
    fmt(lost, 1),
    fmt(med(runs.map(retransmissions)), 0),
  ];
}

function streamSection(records: readonly RunRecord[], conditions: readonly Condition[], transports: readonly string[], seconds: number): { markdown: string; summary: unknown[] } {
  const rows: string[][] = [];
  const summary: unknown[] = [];
  for (const c of conditions) {
    for (const tr of transports) {
      const all = records.filter((r) => r.case === 'stream' && r.condition === c.key && r.transport === tr);
      if (all.length === 0) continue;
      const ok = all.filter((r) => r.ok && r.latency !== undefined);
      const lat = (f: (l: NonNullable<RunRecord['latency']>) => number): number[] => ok.map((r) => f(r.latency!));
      const failed = all.filter((r) => !r.ok);
      const isFloor = TRANSPORTS[tr]!.streamOnly === true;
      rows.push([
        `${c.label}: ${TRANSPORTS[tr]!.label}`,
        `${ok.length}/${all.length}${failed.length > 0 ? ` (${failed[0]!.error})` : ''}`,
        isFloor ? all.map((r) => `${r.delivered ?? '–'}/${r.expected ?? '–'}`).join(', ') : ok.length > 0 ? `all ${ok[0]!.expected}, once, in order` : '–',
        fmt(med(lat((l) => l.p50)), 2),
        fmt(med(lat((l) => l.p90)), 1),
        fmt(med(lat((l) => l.p99)), 1),
        range(lat((l) => l.p99)),
        fmt(med(lat((l) => l.max)), 1),
        ...trafficCells(ok),
      ]);
      summary.push({
        condition: c.key,
        transport: tr,
        okRuns: ok.length,
        runs: all.length,
        p50: med(lat((l) => l.p50)),
        p90: med(lat((l) => l.p90)),
        p99: med(lat((l) => l.p99)),
        max: med(lat((l) => l.max)),
        p99PerSeed: lat((l) => l.p99),
        errors: failed.map((r) => r.error),
      });
    }
  }
  const markdown = [
    `#### stream: ${SIZE} B messages at ${RATE} msg/s for ${seconds} s, one-way delay ${DELAY_MS} ms`,
    '',
    table(
      ['loss: transport', 'runs ok', 'delivered', 'p50 ms', 'p90 ms', 'p99 ms', 'p99 per seed', 'max ms', 'data dir: datagrams / bytes', 'reverse: datagrams / bytes', 'wire bytes / payload', 'data lost on link %', 'retx'],
      rows,
    ),
  ].join('\n');
  return { markdown, summary };
}

function bulkSection(records: readonly RunRecord[], conditions: readonly Condition[], transports: readonly string[], totals: Record<string, number>, limitS: number): { markdown: string; summary: unknown[] } {
  const rows: string[][] = [];
  const summary: unknown[] = [];
  for (const c of conditions) {
    for (const tr of transports) {
      if (TRANSPORTS[tr]!.streamOnly === true) continue;
      const all = records.filter((r) => r.case === 'bulk' && r.condition === c.key && r.transport === tr);
      if (all.length === 0) continue;
      const ok = all.filter((r) => r.ok && r.goodputMBs !== undefined);
      const done = ok.filter((r) => r.finished === true);
      const dnf = ok.filter((r) => r.finished !== true);
      const goodput = ok.map((r) => r.goodputMBs!);
      const failed = all.filter((r) => !r.ok);
      rows.push([
        `${c.label}: ${TRANSPORTS[tr]!.label}`,
        `${done.length}/${all.length}${failed.length > 0 ? ` (${failed[0]!.error})` : ''}`,
        `${fmt(med(goodput), 2)}${dnf.length > 0 ? ' (DNF)' : ''}`,
        range(goodput, 2),
        dnf.length > 0 ? dnf.map((r) => `did not finish, ${fmt((r.bytes ?? 0) / MIB, 1)} MiB in ${fmt(r.seconds, 0)} s`).join('; ') : `${totals[c.key]! / MIB} MiB in ${fmt(med(done.map((r) => r.seconds ?? NaN)), 1)} s`,
        ...trafficCells(ok),
        `${fmt(med(ok.map((r) => r.senderCpu ?? NaN)), 1)} / ${fmt(med(ok.map((r) => r.receiverCpu ?? NaN)), 1)}`,
      ]);
      summary.push({
        condition: c.key,
        transport: tr,
        finishedRuns: done.length,
        runs: all.length,
        goodputMBs: med(goodput),
        goodputPerSeed: goodput,
        didNotFinish: dnf.map((r) => ({ seed: r.seed, bytes: r.bytes, seconds: r.seconds })),
        errors: failed.map((r) => r.error),
      });
    }
  }
  const markdown = [
    `#### bulk: 1 MiB messages (${conditions.map((c) => `${totals[c.key]! / MIB} MiB at ${c.label}`).join(', ')}), one-way delay ${DELAY_MS} ms, at most ${limitS} s per run`,
    '',
    table(
      ['loss: transport', 'finished', 'goodput MB/s (median)', 'range', 'delivered', 'data dir: datagrams / bytes', 'reverse: datagrams / bytes', 'wire bytes / payload', 'data lost on link %', 'retx', 'CPU s send / recv'],
      rows,
    ),
  ].join('\n');
  return { markdown, summary };
}

function verdicts(records: readonly RunRecord[], floorMs: number): string[] {
  const lines: string[] = [];
  const streamRuns = (cond: string, tr: string): RunRecord[] => records.filter((r) => r.case === 'stream' && r.condition === cond && r.transport === tr && r.ok && r.latency !== undefined);
  const streamFailures = (cond: string): number => records.filter((r) => r.case === 'stream' && r.condition === cond && r.transport === 'rudp' && !r.ok).length;
  const stat = (cond: string, tr: string, f: (l: NonNullable<RunRecord['latency']>) => number): { m: number; all: number[] } => {
    const all = streamRuns(cond, tr).map((r) => f(r.latency!));
    return { m: med(all), all };
  };
  const judge = (value: number, target: number): string => (!Number.isFinite(value) ? 'no measurement' : value <= target ? 'met' : 'MISSED');
  const judgeMin = (value: number, target: number): string => (!Number.isFinite(value) ? 'no measurement' : value >= target ? 'met' : 'MISSED');
  const seeds = (all: number[], digits = 1): string => (all.length > 1 ? ` (per seed ${all.map((v) => fmt(v, digits)).join(', ')})` : '');
  const others = (cond: string, f: (l: NonNullable<RunRecord['latency']>) => number, digits = 1): string =>
    ['tcp-cubic', 'tcp-bbr', 'udx']
      .map((tr) => [TRANSPORTS[tr]!.label, med(streamRuns(cond, tr).map((r) => f(r.latency!)))] as const)
      .filter(([, v]) => Number.isFinite(v))
      .map(([l, v]) => `${l} ${fmt(v, digits)}`)
      .join(', ');
  if (records.some((r) => r.case === 'stream' && r.transport === 'rudp')) {
    const p50 = stat('loss5', 'rudp', (l) => l.p50);
    const p90 = stat('loss5', 'rudp', (l) => l.p90);
    const p99 = stat('loss5', 'rudp', (l) => l.p99);
    const p99two = stat('loss2', 'rudp', (l) => l.p99);
    const fails = (cond: string): string => (streamFailures(cond) > 0 ? `; ${streamFailures(cond)} run(s) failed delivery and are not counted` : '');
    const udp50 = stat('loss5', 'udp', (l) => l.p50).m;
    lines.push(
      `- stream, 5 % each way, rx-rudp p50 ≤ floor + 0.5 ms = ${fmt(floorMs + 0.5, 2)} ms: ${fmt(p50.m, 2)} ms${seeds(p50.all, 2)} — ${judge(p50.m, floorMs + 0.5)}${fails('loss5')} (others: ${others('loss5', (l) => l.p50, 2) || '–'}${Number.isFinite(udp50) ? `; raw UDP ${fmt(udp50, 2)}` : ''})`,
      `- stream, 5 % each way, rx-rudp p90 ≤ 30 ms: ${fmt(p90.m)} ms${seeds(p90.all)} — ${judge(p90.m, 30)} (others: ${others('loss5', (l) => l.p90) || '–'})`,
      `- stream, 5 % each way, rx-rudp p99 ≤ 36 ms: ${fmt(p99.m)} ms${seeds(p99.all)} — ${judge(p99.m, 36)} (others: ${others('loss5', (l) => l.p99) || '–'})`,
      `- stream, 2 % each way, rx-rudp p99 ≤ 33 ms: ${fmt(p99two.m)} ms${seeds(p99two.all)} — ${judge(p99two.m, 33)}${fails('loss2')} (others: ${others('loss2', (l) => l.p99) || '–'})`,
    );
  }
  // The raw UDP stream resends nothing, so its tail is the machine's (scheduling, timers, linkem),
  // not a transport's: a p99 well above the floor says every latency of that run is inflated too.
  const noise = ['loss5', 'loss2', 'burst5']
    .map((cond) => [cond, stat(cond, 'udp', (l) => l.p99), stat(cond, 'udp', (l) => l.max)] as const)
    .filter(([, p99]) => p99.all.length > 0);
  if (noise.length > 0) {
    lines.push(
      `- machine check (not a target): raw UDP, which resends nothing, p99 / max ${noise.map(([cond, p99, mx]) => `${cond} ${fmt(p99.m)} / ${fmt(mx.m)} ms`).join(', ')} over a ${fmt(floorMs, 1)} ms floor; what exceeds ~1 ms above the floor there is the machine (other load, timers, linkem), and is in every transport's figures of that condition too.`,
    );
  }
  const goodput = (cond: string, tr: string): number =>
    med(records.filter((r) => r.case === 'bulk' && r.condition === cond && r.transport === tr && r.ok && r.goodputMBs !== undefined).map((r) => r.goodputMBs!));
  if (records.some((r) => r.case === 'bulk' && r.transport === 'rudp')) {
    const dnf = (cond: string): string => {
      const n = records.filter((r) => r.case === 'bulk' && r.condition === cond && r.transport === 'rudp' && r.finished === false).length;
      return n > 0 ? ` (${n} rx-rudp run(s) did not finish: their figure is what arrived within the limit)` : '';
    };
    const r2 = goodput('loss2', 'rudp');
    const bbr2 = goodput('loss2', 'tcp-bbr');
    const udx2 = goodput('loss2', 'udx');
    const r5 = goodput('loss5', 'rudp');
    const bestTcp5 = [goodput('loss5', 'tcp-cubic'), goodput('loss5', 'tcp-bbr')].filter((v) => Number.isFinite(v));
    const best5 = bestTcp5.length > 0 ? Math.max(...bestTcp5) : NaN;
    lines.push(
      `- bulk, 2 % each way, rx-rudp ≥ 1.0 × TCP BBR: ${fmt(r2, 2)} vs ${fmt(bbr2, 2)} MB/s = ${fmt(r2 / bbr2, 2)} × — ${judgeMin(r2 / bbr2, 1.0)}${dnf('loss2')}`,
      `- bulk, 2 % each way, rx-rudp ≥ 1.2 × udx-native: ${fmt(r2, 2)} vs ${fmt(udx2, 2)} MB/s = ${fmt(r2 / udx2, 2)} × — ${judgeMin(r2 / udx2, 1.2)}`,
      `- bulk, 5 % each way, rx-rudp ≥ 1.0 × TCP (best of CUBIC / BBR): ${fmt(r5, 2)} vs ${fmt(best5, 2)} MB/s = ${fmt(r5 / best5, 2)} × — ${judgeMin(r5 / best5, 1.0)}${dnf('loss5')}`,
    );
  }
  return lines;
}

// ---- the benchmark --------------------------------------------------------------------------------------

function list(flags: Flags, name: string, fallback: readonly string[], known: readonly string[]): string[] {
  const values = (flagString(flags, name) ?? fallback.join(',')).split(',').filter((s) => s !== '');
  for (const v of values) if (!known.includes(v)) throw new Error(`--${name}: unknown '${v}' (known: ${known.join(', ')})`);
  return values;
}

interface Plan {
  readonly quick: boolean;
  readonly seeds: number[];
  readonly cases: string[];
  /** Condition keys to run (bulk has loss2 and loss5 only). */
  readonly conditions: string[];
  readonly transports: string[];
  readonly seconds: number;
  readonly totals: Record<string, number>;
  readonly runLimitS: number;
  readonly budgetS: number;
}

function plan(flags: Flags): Plan {
  const quick = flags.has('quick');
  const n = flagNumber(flags, 'seeds', quick ? 1 : 3);
  const first = flagNumber(flags, 'first-seed', 1);
  const mib = flagNumber(flags, 'mib', quick ? 8 : 48);
  return {
    quick,
    seeds: Array.from({ length: n }, (_, i) => first + i),
    cases: list(flags, 'cases', ['stream', 'bulk'], ['stream', 'bulk']),
    conditions: list(flags, 'conditions', ['loss5', 'loss2', 'burst5'], ['loss5', 'loss2', 'burst5']),
    transports: list(flags, 'transports', Object.keys(TRANSPORTS), Object.keys(TRANSPORTS)),
    seconds: flagNumber(flags, 'seconds', quick ? 4 : 10),
    totals: { loss2: mib * MIB, loss5: flagNumber(flags, 'mib-5', quick ? 8 : 16) * MIB },
    runLimitS: flagNumber(flags, 'run-limit', quick ? 20 : 60),
    budgetS: flagNumber(flags, 'budget', quick ? 480 : 1500),
  };
}

/** Upper bound of one stream or bulk run, for the budget and the process limit. */
function runBoundS(p: Plan, kind: string): number {
  return kind === 'stream' ? p.seconds + STREAM_DRAIN_MS / 1000 + 8 : p.runLimitS + 8;
}

async function run(flags: Flags): Promise<BenchResult> {
  const p = plan(flags);
  const unavailable = linkemUnavailable();
  if (unavailable !== undefined) {
    return { name: 'path', title: 'Over a real kernel path', markdown: `### Over a real kernel path (linkem)\n\nNot run: ${unavailable}.`, data: { unavailable }, seconds: 0 };
  }
  const link = LinkPath.acquire(p.budgetS + 300);
  const begun = Date.now();
  const records: RunRecord[] = [];
  const skipped: string[] = [];
  const grants: Record<string, unknown> = {};
  const ccSeen: Record<string, string[]> = {};
  let setup: Record<string, unknown> = {};
  try {
    link.up(STREAM_CONDITIONS[0]!.imp, p.seeds[0]!);
    const dev = link.exec(NS_A, ['ip', '-o', 'link', 'show', `${NS_A}0`]) ?? '';
    setup = {
      linkem: LINKEM_DIR,
      // Which linkem measured: netns-up.sh builds it from this source into the state folder.
      linkemSourceSha256: createHash('sha256').update(readFileSync(path.join(LINKEM_DIR, 'linkem.c'))).digest('hex').slice(0, 16),
      namespaces: `${NS_A} ${IP_A} (receiver) ↔ ${NS_B} ${IP_B} (sender)`,
      device: `${/mtu (\d+)/.exec(dev)?.[0] ?? 'mtu ?'}, ${/qlen (\d+)/.exec(dev)?.[0] ?? 'qlen ?'}`,
      tcpAvailableCongestionControl: link.sysctl(NS_A, 'net.ipv4.tcp_available_congestion_control'),
      tcpAllowedCongestionControl: link.sysctl(NS_A, 'net.ipv4.tcp_allowed_congestion_control'),
      tcpCongestionControlBefore: { [NS_A]: link.sysctl(NS_A, 'net.ipv4.tcp_congestion_control'), [NS_B]: link.sysctl(NS_B, 'net.ipv4.tcp_congestion_control') },
      rmemMax: link.sysctl(NS_A, 'net.core.rmem_max'),
      wmemMax: link.sysctl(NS_A, 'net.core.wmem_max'),
      tcpRmem: link.sysctl(NS_A, 'net.ipv4.tcp_rmem'),
      tcpWmem: link.sysctl(NS_A, 'net.ipv4.tcp_wmem'),
      rudpDefaults: { maxDatagramSize: DEFAULTS.maxDatagramSize, receiveWindow: DEFAULTS.receiveWindow, maxBufferedBytes: DEFAULTS.maxBufferedBytes, socketBuffersAsked: '4 MiB' },
      seeds: p.seeds,
      conditions: {
        stream: STREAM_CONDITIONS.map((c) => ({ key: c.key, label: c.label, linkem: impairmentArgs(c.imp, 0).slice(0, -2).join(' ') })),
        bulk: BULK_CONDITIONS.map((c) => ({ key: c.key, label: c.label, linkem: impairmentArgs(c.imp, 0).slice(0, -2).join(' '), bytes: p.totals[c.key] })),
      },
    };
    process.stderr.write(`path: setup ${JSON.stringify(setup)}\n`);

    // Interleaved: for each seed, every case, condition and transport once, so a drift of a busy
    // machine spreads over all of them.
    for (const seed of p.seeds) {
      for (const kind of p.cases as ('stream' | 'bulk')[]) {
        const conditions = (kind === 'stream' ? STREAM_CONDITIONS : BULK_CONDITIONS).filter((c) => p.conditions.includes(c.key));
        for (const condition of conditions) {
          for (const transport of p.transports) {
            if (kind === 'bulk' && TRANSPORTS[transport]!.streamOnly === true) continue;
            const label = `${kind} ${condition.key} ${transport} seed ${seed}`;
            if ((Date.now() - begun) / 1000 + runBoundS(p, kind) > p.budgetS) {
              skipped.push(label);
              continue;
            }
            const record = await runOne({
              link,
              kind,
              condition,
              transport,
              seed,
              count: p.seconds * RATE,
              total: p.totals[condition.key] ?? 0,
              limitMs: kind === 'stream' ? (p.seconds + 10) * 1000 + STREAM_DRAIN_MS : p.runLimitS * 1000,
              grants,
            });
            records.push(record);
            if (record.tcpInfo?.cc !== undefined) (ccSeen[transport] ??= []).includes(record.tcpInfo.cc) || ccSeen[transport]!.push(record.tcpInfo.cc);
            const summary = !record.ok
              ? `FAILED ${record.error}`
              : kind === 'stream'
                ? `p50 ${fmt(record.latency?.p50, 2)} p99 ${fmt(record.latency?.p99)} max ${fmt(record.latency?.max)} ms, ${record.delivered}/${record.expected}`
                : `${fmt(record.goodputMBs, 2)} MB/s${record.finished ? '' : ` (did not finish: ${fmt((record.bytes ?? 0) / MIB, 1)} MiB in ${fmt(record.seconds, 0)} s)`}`;
            process.stderr.write(`path ${label}: ${summary}; data ${record.traffic?.data.datagrams ?? '?'} datagrams (${record.traffic?.data.lost ?? '?'} lost), reverse ${record.traffic?.reverse.datagrams ?? '?'}${record.traffic?.clock ? `; clock ${record.traffic.clock.sent} sent, ${record.traffic.clock.echoed} echoed, ${record.traffic.clock.received} back` : ''}\n`);
          }
        }
      }
    }
  } finally {
    link.downSync();
  }

  const transports = p.transports;
  const floorMs = DELAY_MS; // no rate limit is set on the link: serialization adds nothing there
  const floorUdp = med(records.filter((r) => r.case === 'stream' && r.transport === 'udp' && r.latency !== undefined).map((r) => r.latency!.p50));
  const stream = p.cases.includes('stream') ? streamSection(records, STREAM_CONDITIONS, transports, p.seconds) : undefined;
  const bulk = p.cases.includes('bulk') ? bulkSection(records, BULK_CONDITIONS, transports, p.totals, p.runLimitS) : undefined;
  const harness = records.reduce((s, r) => s + (r.traffic?.harnessDrops ?? 0), 0);
  const ccLine = Object.entries(ccSeen)
    .map(([tr, cc]) => `${TRANSPORTS[tr]!.label}: set net.ipv4.tcp_congestion_control=${TRANSPORTS[tr]!.cc} in both namespaces, \`ss -ti\` on the sender's socket showed ${cc.join('/')}`)
    .join('; ');
  const machine = machineInfo();
  const markdown = [
    `### Over a real kernel path (linkem, two network namespaces), every transport in the same run, ${p.seeds.length} seed${p.seeds.length === 1 ? '' : 's'} (${p.seeds.join(', ')}), interleaved`,
    '',
    `Path: ${setup['namespaces']}, ${setup['device']}, linkem from \`${LINKEM_DIR}\`; one-way delay ${DELAY_MS} ms, no rate limit. ` +
      `Link floor for a ${SIZE} B message: ${fmt(floorMs, 2)} ms (${DELAY_MS} ms propagation + 0 serialization, as no rate is set)` +
      `${Number.isFinite(floorUdp) ? `; the raw UDP stream's median p50, ${fmt(floorUdp, 2)} ms, is that plus what the kernel, linkem and Node add` : ''}. ` +
      `Kernel: TCP congestion controls available ${String(setup['tcpAvailableCongestionControl'])}; ${ccLine || 'no TCP run'}. ` +
      `net.core.rmem_max ${String(setup['rmemMax'])}, wmem_max ${String(setup['wmemMax'])}, tcp_rmem ${String(setup['tcpRmem'])}, tcp_wmem ${String(setup['tcpWmem'])} (in ${NS_A}); ` +
      `UDP socket buffers granted (getsockopt, the kernel doubles the request): ${Object.entries(grants).map(([k, v]) => `${k} ${String(v)}`).join(', ') || '–'}; rx-rudp asks for 4 MiB each (≤ rmem_max, so granted). ` +
      `${link.allowedAdded.length > 0 ? `Outside the initial namespace the kernel lets a namespace's default be only an algorithm in the global net.ipv4.tcp_allowed_congestion_control (${String(setup['tcpAllowedCongestionControl'])} here), so ${link.allowedAdded.join(', ')} was added to that list for the run and the list restored afterwards. ` : ''}` +
      `Node ${machine.node}. rx-rudp at its defaults (${DEFAULTS.maxDatagramSize} B datagrams, receive window ${DEFAULTS.receiveWindow} packets).`,
    '',
    ...(stream ? [stream.markdown, ''] : []),
    ...(bulk ? [bulk.markdown, ''] : []),
    '**Verdicts** (targets from the issue; medians over seeds):',
    '',
    ...verdicts(records, floorMs),
    '',
    `Linkem impairments (\`netns-up.sh\` arguments, with \`--seed N\` per run, which resets its random streams and Gilbert-Elliott state before every run): ` +
      [...(p.cases.includes('stream') ? STREAM_CONDITIONS.map((c) => `stream ${c.key} \`${impairmentArgs(c.imp, 0).slice(0, -2).join(' ')}\``) : []), ...(p.cases.includes('bulk') ? BULK_CONDITIONS.map((c) => `bulk ${c.key} \`${impairmentArgs(c.imp, 0).slice(0, -2).join(' ')}\``) : [])].join(', ') +
      `. The bursty condition is Gilbert-Elliott with P(good→bad) 1.3 %, P(bad→good) 25 %, loss 100 % in the bad state and 0 in the good one: 4.9 % of packets on average, bursts of 4 packets on average ` +
      `(few bursts per run, so a run's realized loss varies: see "data lost on link"). linkem steps that chain once per packet, not per unit of time, so alone a sender that goes quiet after a loss (a TCP or udx retransmission timeout) ` +
      `would meet the same burst with each retransmission, 75 % of them lost again, and stall for seconds. So in that condition a clock flow crosses the link beside the transport: the sender's process sends ${CLOCK_RATE} datagrams/s of ${CLOCK_IP_BYTES} bytes (IP) to the receiver's, which echoes them; ` +
      `the chain then steps at least ${CLOCK_RATE} times a second each way and a burst ends in time (~${fmt((4 * 1000) / (2 * CLOCK_RATE), 0)}–${fmt((4 * 1000) / CLOCK_RATE, 0)} ms) as on a real link. Both ends count the clock's datagrams exactly, and they are taken out of every traffic figure. ` +
      `At one seed the k-th packet into a direction meets the same fate for every transport (each direction draws its own stream, one decision per packet); transports send different packets (acknowledgements, retransmissions), so which message that hits differs.`,
    '',
    `One-way latency = arrival (after the whole message) − the CLOCK_MONOTONIC stamp (process.hrtime.bigint()) the sender wrote into the message when it sent it; both processes read the same kernel clock. ` +
      `Every reliable run must deliver all ${p.seconds * RATE} messages once and in order (checked by sequence number) or it fails and is left out of the medians. ` +
      `Traffic is what linkem counted entering the link (IP packets and bytes with headers, before its loss), B → A = data direction, A → B = reverse, from SIGUSR1 snapshots before the sender starts and 200 ms after the receiver has everything; ` +
      `"wire bytes / payload" adds both directions. retx = the sender's own count (rx-rudp retransmissions, udx-native retransmits) or the kernel's retransmitted segments (\`ss -ti\` retrans, TCP). ` +
      `Bulk goodput = verified payload bytes / (sender's first write → receiver's last byte), 1 MB = 10⁶ B; a run that hits the ${p.runLimitS} s limit counts what arrived by then. ` +
      `TCP: node:net, setNoDelay(true) both ends, messages length-prefixed; udx-native ${'1.21.3'}: one stream each way on one socket per side, length-prefixed, socket buffers set to 4 MiB like rx-rudp's. ` +
      `Harness drops (linkem queue / memory / TUN write, not the configured loss): ${harness}.`,
    ...(skipped.length > 0 ? ['', `**Skipped (time budget of ${p.budgetS} s spent):** ${skipped.join(', ')}`] : []),
  ].join('\n');
  return {
    name: 'path',
    title: 'Over a real kernel path',
    markdown,
    data: {
      setup: { ...setup, allowedCongestionControlAdded: link.allowedAdded, socketBuffersGranted: grants, tcpCongestionControlSeen: ccSeen, floorMs, floorUdpP50: floorUdp },
      plan: p,
      stream: stream?.summary,
      bulk: bulk?.summary,
      verdicts: verdicts(records, floorMs),
      runs: records.map((r) => ({ ...r, receiver: r.receiver, sender: r.sender })),
      skipped,
      harnessDrops: harness,
    },
    seconds: 0,
  };
}

benchMain((flags) => (plan(flags).budgetS + 120) * 1000, run);
