/**
 * Sparse traffic under loss, in real time over the VirtualNetwork: one-way delay 10 ms, exact loss
 * per direction (k of every 100, without replacement). A sends a 1 KiB message every 100 ms; B
 * records each message's one-way latency from a send timestamp embedded in it (same process,
 * same clock). Each loss rate runs in its own process (in parallel unless --serial).
 *
 *   node bench/dist/bench/sparse.js [--quick] [--duration 60] [--serial]
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { realTimeScheduler, connect, listen, type Connection } from '../lib/index';
import { VirtualNetwork } from '../lib/testing/index';
import { benchMain, cpuSeconds, loopDelaySummary, LOOP_RESOLUTION_MS, flagBool, flagNumber, flagString, table, type BenchResult, type Flags } from './lib/common';
import { LinkModel, lossLabel, type LossSpec } from './lib/link';
import { Child, childGuard, emit, type Message } from './lib/proc';
import { fmt, summarize, type Summary } from './lib/stats';

const A = '10.0.0.1';
const B = '10.0.0.2';
const PORT = 7000;
const DELAY = 10;
const PERIOD = 100;
const SIZE = 1024;
const DRAIN_MS = 10_000;

const SCENARIOS: Record<string, LossSpec> = {
  '2': { drop: 2, block: 100 },
  '5': { drop: 5, block: 100 },
};

interface SparseReport {
  readonly loss: string;
  readonly sent: number;
  readonly delivered: number;
  readonly inOrder: boolean;
  readonly latency: Summary;
  /** Messages later than 50 ms (the recovery path). */
  readonly over50ms: number;
  readonly aPacketsSent: number;
  readonly aRetransmissions: number;
  readonly aPingsSent: number;
  readonly bRepeatsSent: number;
  readonly wire: { aToB: { sent: number; dropped: number }; bToA: { sent: number; dropped: number } };
  readonly lateness: Summary | undefined;
  /** This process's event-loop delay (ms: p50, p99, max) and CPU seconds over the scenario. */
  readonly eventLoop: { p50: number; p99: number; max: number };
  readonly cpuSeconds: number;
}

async function scenario(flags: Flags): Promise<void> {
  const seconds = flagNumber(flags, 'duration', 60);
  childGuard(seconds * 1000 + DRAIN_MS + 30_000);
  const lossName = flagString(flags, 'loss') ?? '2';
  const loss = SCENARIOS[lossName];
  if (loss === undefined) throw new Error(`unknown --loss ${lossName}`);
  const seed = flagNumber(flags, 'seed', 1);
  const scheduler = realTimeScheduler;
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loopDelay.enable();
  const cpu0 = process.cpuUsage();
  const network = new VirtualNetwork({ scheduler, seed });
  const model = new LinkModel({ scheduler, seed, delay: DELAY, jitter: 0, loss });
  network.setLink(A, B, { delay: DELAY, drop: model.drop });
  network.setLink(B, A, { delay: DELAY, drop: model.drop });

  const count = Math.round((seconds * 1000) / PERIOD);
  const latencies: number[] = [];
  let inOrder = true;
  let next = 0;
  let bConn: Connection | undefined;
  let allDelivered: () => void = () => undefined;
  const delivered = new Promise<void>((resolve) => (allDelivered = resolve));
  listen({ host: B, port: PORT, scheduler, socketFactory: model.wrap(B, network.socketFactory(B)) }).subscribe((conn) => {
    bConn = conn;
    conn.messages$.subscribe((m) => {
      const view = new DataView(m.buffer, m.byteOffset, m.byteLength);
      latencies.push(performance.now() - view.getFloat64(0));
      if (view.getUint32(8) !== next) inOrder = false;
      next++;
      if (latencies.length === count) allDelivered();
    });
  });

  const aConn = await new Promise<Connection>((resolve, reject) => {
    connect({ host: B, port: PORT, scheduler, socketFactory: model.wrap(A, network.socketFactory(A)) }).subscribe({ next: resolve, error: reject });
  });
  const t0 = performance.now();
  await new Promise<void>((resolve) => {
    let i = 0;
    const tick = (): void => {
      const message = new Uint8Array(SIZE);
      const view = new DataView(message.buffer);
      view.setUint32(8, i);
      view.setFloat64(0, performance.now());
      aConn.send$.next(message);
      if (++i === count) return resolve();
      setTimeout(tick, Math.max(0, t0 + i * PERIOD - performance.now()));
    };
    tick();
  });
  await Promise.race([delivered, new Promise((resolve) => setTimeout(resolve, DRAIN_MS))]);
  const a = aConn.stats;
  const links = network.stats().links;
  const link = (from: string, to: string) => {
    const l = links.find((x) => x.from === from && x.to === to);
    return { sent: l?.sent ?? 0, dropped: l?.dropped ?? 0 };
  };
  const report: SparseReport = {
    loss: lossLabel(loss),
    sent: count,
    delivered: latencies.length,
    inOrder,
    latency: summarize(latencies),
    over50ms: latencies.filter((l) => l > 50).length,
    aPacketsSent: a.packetsSent,
    aRetransmissions: a.retransmissions,
    aPingsSent: a.pingsSent,
    bRepeatsSent: bConn?.stats.repeatsSent ?? NaN,
    wire: { aToB: link(A, B), bToA: link(B, A) },
    lateness: model.lateness.length > 0 ? summarize(model.lateness) : undefined,
                  eventLoop: loopDelaySummary(loopDelay),
                  cpuSeconds: cpuSeconds(cpu0).total,
  };
  emit({ type: 'report', report });
  process.exit(0);
}

async function run(flags: Flags): Promise<BenchResult> {
  const quick = flags.has('quick');
  const seconds = flagNumber(flags, 'duration', quick ? 15 : 60);
  const serial = flagBool(flags, 'serial');
  const names = Object.keys(SCENARIOS);
  const limit = seconds * 1000 + DRAIN_MS + 30_000;
  const runScenario = async (name: string): Promise<SparseReport | string> => {
    const child = new Child(`sparse:${name}`, __filename, ['--role', 'scenario', '--loss', name, '--duration', String(seconds)], { timeoutMs: limit + 5000 });
    try {
      return (await child.next<Message & { report: SparseReport }>('report', limit)).report;
    } catch (error) {
      return error instanceof Error ? error.message.split('\n')[0]! : String(error);
    } finally {
      await child.stop(1000);
    }
  };
  const results: (SparseReport | string)[] = [];
  if (serial) for (const n of names) results.push(await runScenario(n));
  else results.push(...(await Promise.all(names.map(runScenario))));

  const rows = names.map((n, i) => {
    const r = results[i]!;
    if (typeof r === 'string') return [`${n} % each way`, `FAILED: ${r}`, '', '', '', '', '', '', '', ''];
    return [
      `${n} % each way (${r.loss})`,
      `${r.delivered}/${r.sent}${r.inOrder ? '' : ' (OUT OF ORDER)'}`,
      fmt(r.latency.p50),
      fmt(r.latency.p99),
      fmt(r.latency.max),
      String(r.over50ms),
      `${r.aPacketsSent} (${r.aRetransmissions} retx)`,
      r.lateness ? `${fmt(r.lateness.p50)} / ${fmt(r.lateness.p99)} / ${fmt(r.lateness.max)}` : 'n/a',
      `${fmt(r.eventLoop.p99)} / ${fmt(r.eventLoop.max)}`,
      fmt(r.cpuSeconds, 2),
    ];
  });
  const markdown = [
    `### Sparse traffic under loss: real time, one-way delay ${DELAY} ms, ${SIZE} B every ${PERIOD} ms for ${seconds} s`,
    '',
    table(['loss', 'delivered', 'one-way p50 ms', 'p99 ms', 'max ms', 'msgs > 50 ms', 'datagrams sent by A', 'timer lateness p50/p99/max ms', 'event-loop delay p99/max ms', 'CPU s'], rows),
    '',
    `One-way latency = B's arrival − the performance.now() stamped into the message by A (same process). Floor is ${DELAY} ms. ` +
      `A lost message with nothing behind it for ${PERIOD} ms cannot be detected by B (no gap yet), so it waits for A's retransmission timeout. ` +
      (serial ? 'Loss rates ran one after the other.' : 'Loss rates ran in parallel, one process each.'),
  ].join('\n');
  return { name: 'sparse', title: 'Sparse traffic under loss', markdown, data: { seconds, results }, seconds: 0 };
}

benchMain((flags) => (flagNumber(flags, 'duration', flags.has('quick') ? 15 : 60) * 1000 * 2 + 120_000), run, { scenario });
