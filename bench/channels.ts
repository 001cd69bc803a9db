/**
 * Channels, in real time over the VirtualNetwork (10 ms one-way, exact loss per direction): does a
 * loss or a bulk transfer on one channel delay another? Each case runs beside its baseline in the
 * same run, each variant in its own process; --runs N repeats them interleaved.
 *
 * - isolation (5 % each way): 1 KiB at 100 msg/s on channel 1 and on channel 2. Channel 2's
 *   one-way latency with channel 1 beside it ("two"), with channel 1 silent ("alone"), and with
 *   both streams on one channel ("one", where every loss holds back both).
 * - position (10 % each way): 16 B every 20 ms on a channel with ttl 50 ms; the delivered fraction
 *   and the latency of what was delivered, beside the same channel without a ttl.
 * - bulk (no loss): 1 KiB at 100 msg/s on a control channel (priority 0), alone, beside a bulk
 *   transfer of 64 KiB messages on a channel of priority -1 (at most 4 MiB queued), and beside
 *   one paced at 8 MiB/s (less CPU: the event loop both ends share is then less in the way).
 *
 * One-way latency = arrival − the performance.now() stamped into the message (same process).
 * The VirtualNetwork has no bandwidth limit: the bulk case measures the sender's scheduling and
 * the CPU both ends share in this process, not the queue of a bottleneck link.
 *
 *   node bench/dist/bench/channels.js [--quick] [--seconds N] [--runs N] [--serial]
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { realTimeScheduler, connect, listen, MessageExpiredError, type Channel, type Connection } from '../lib/index';
import { VirtualNetwork } from '../lib/testing/index';
import { benchMain, cpuSeconds, loopDelaySummary, LOOP_RESOLUTION_MS, flagBool, flagNumber, flagString, table, type BenchResult, type Flags } from './lib/common';
import { LinkModel, lossLabel, type LossSpec } from './lib/link';
import { Child, childGuard, emit, type Message } from './lib/proc';
import { fmt, median, summarize, type Summary } from './lib/stats';

const A = '10.0.0.1';
const B = '10.0.0.2';
const PORT = 7000;
const DELAY = 10;
const DRAIN_MS = 5_000;
const BULK_MESSAGE = 64 * 1024;
const BULK_QUEUED = 4 * 1024 * 1024;

interface Variant {
  readonly loss: LossSpec;
  /** Streams sent by A: the channel each goes on, its size and period; the first is measured. */
  readonly streams: readonly { readonly channel: number; readonly size: number; readonly period: number; readonly ttl?: number }[];
  /** A bulk transfer beside: as fast as the windows allow, or paced at this many MiB/s. */
  readonly bulk?: 'unpaced' | number;
}

const NONE: LossSpec = { drop: 0, block: 100 };
const FIVE: LossSpec = { drop: 5, block: 100 };
const TEN: LossSpec = { drop: 10, block: 100 };

const CASES: Record<string, Record<string, Variant>> = {
  isolation: {
    two: { loss: FIVE, streams: [{ channel: 2, size: 1024, period: 10 }, { channel: 1, size: 1024, period: 10 }] },
    alone: { loss: FIVE, streams: [{ channel: 2, size: 1024, period: 10 }] },
    one: { loss: FIVE, streams: [{ channel: 1, size: 1024, period: 10 }, { channel: 1, size: 1024, period: 10 }] },
  },
  position: {
    ttl: { loss: TEN, streams: [{ channel: 1, size: 16, period: 20, ttl: 50 }] },
    reliable: { loss: TEN, streams: [{ channel: 1, size: 16, period: 20 }] },
  },
  bulk: {
    alone: { loss: NONE, streams: [{ channel: 1, size: 1024, period: 10 }] },
    'with bulk': { loss: NONE, streams: [{ channel: 1, size: 1024, period: 10 }], bulk: 'unpaced' },
    // Less CPU for the bulk, so that its effect through the shared event loop shows apart from the channel scheduling's.
    'with bulk at 8 MiB/s': { loss: NONE, streams: [{ channel: 1, size: 1024, period: 10 }], bulk: 8 },
  },
};

interface ScenarioReport {
  readonly sent: number;
  readonly delivered: number;
  /** Each stream's messages came in the order sent (gaps allowed only with a ttl). */
  readonly inOrder: boolean;
  /** The measured stream's one-way latency (ms). */
  readonly latency: Summary;
  /** send() calls of the measured stream that ended with MessageExpiredError. */
  readonly expired: number;
  readonly retransmissions: number;
  readonly bulkMiBps: number | undefined;
  readonly lateness: Summary | undefined;
  readonly eventLoop: { p50: number; p99: number; max: number };
  readonly cpuSeconds: number;
}

async function scenario(flags: Flags): Promise<void> {
  const seconds = flagNumber(flags, 'seconds', 20);
  childGuard(seconds * 1000 + DRAIN_MS + 30_000);
  const variant = CASES[flagString(flags, 'case') ?? '']?.[flagString(flags, 'variant') ?? ''];
  if (variant === undefined) throw new Error(`unknown --case ${flagString(flags, 'case')} / --variant ${flagString(flags, 'variant')}`);
  const seed = flagNumber(flags, 'seed', 1);
  const scheduler = realTimeScheduler;
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loopDelay.enable();
  const cpu0 = process.cpuUsage();
  const network = new VirtualNetwork({ scheduler, seed });
  const model = new LinkModel({ scheduler, seed, delay: DELAY, jitter: 0, loss: variant.loss });
  network.setLink(A, B, { delay: DELAY, drop: model.drop });
  network.setLink(B, A, { delay: DELAY, drop: model.drop });

  const streams = variant.streams;
  const counts = streams.map((s) => Math.round((seconds * 1000) / s.period));
  const latencies: number[] = [];
  const next = streams.map(() => 0);
  let inOrder = true;
  let arrived = 0;
  let bulkBytes = 0;
  let bulkFirst: number | undefined;
  let bulkLast = 0;
  let allDelivered: () => void = () => undefined;
  const delivered = new Promise<void>((resolve) => (allDelivered = resolve));
  const reliable = streams.every((s) => s.ttl === undefined);
  const total = counts.reduce((a, b) => a + b, 0);
  const channelIds = [...new Set(streams.map((s) => s.channel))];

  // B: every message carries [sent at: f64][stream: u8][seq: u32]; bulk messages are counted only.
  listen({ host: B, port: PORT, scheduler, channels: true, socketFactory: model.wrap(B, network.socketFactory(B)) }).subscribe((conn) => {
    for (const id of channelIds) {
      conn.channel(id).messages$.subscribe((m) => {
        const view = new DataView(m.buffer, m.byteOffset, m.byteLength);
        const stream = view.getUint8(8);
        const seq = view.getUint32(9);
        if (stream === 0) latencies.push(performance.now() - view.getFloat64(0));
        if (reliable ? seq !== next[stream] : seq < next[stream]!) inOrder = false;
        next[stream] = seq + 1;
        if (++arrived === total && reliable) allDelivered();
      });
    }
    if (variant.bulk !== undefined) {
      conn.channel(3).messages$.subscribe((m) => {
        bulkFirst ??= performance.now();
        bulkLast = performance.now();
        bulkBytes += m.length;
      });
    }
  });

  const aConn = await new Promise<Connection>((resolve, reject) => {
    connect({ host: B, port: PORT, scheduler, channels: true, socketFactory: model.wrap(A, network.socketFactory(A)) }).subscribe({ next: resolve, error: reject });
  });
  const channels = streams.map((s): Channel => aConn.channel(s.channel, s.ttl === undefined ? undefined : { ttl: s.ttl }));
  let expired = 0;
  let stopBulk = false;
  let pacer: NodeJS.Timeout | undefined;
  if (typeof variant.bulk === 'number') {
    const bulk = aConn.channel(3, { priority: -1 });
    const block = new Uint8Array(BULK_MESSAGE);
    const every = (BULK_MESSAGE / 2 ** 20 / variant.bulk) * 1000;
    const started = performance.now();
    let sent = 0;
    // Catches up after a late timer, so the rate holds on average.
    pacer = setInterval(() => {
      for (; sent * every <= performance.now() - started; sent++) bulk.send$.next(block);
    }, Math.max(1, Math.floor(every)));
  } else if (variant.bulk === 'unpaced') {
    // Keep the bulk channel's queue at most BULK_QUEUED deep, refilled as it drains.
    const bulk = aConn.channel(3, { priority: -1 });
    const block = new Uint8Array(BULK_MESSAGE);
    // The emissions a send causes while filling are skipped: the loop counts what it queued.
    let filling = false;
    bulk.bufferedBytes$.subscribe((queued) => {
      if (filling) return;
      filling = true;
      for (let q = queued; !stopBulk && q + BULK_MESSAGE <= BULK_QUEUED; q += BULK_MESSAGE) bulk.send$.next(block);
      filling = false;
    });
  }
  const t0 = performance.now();
  const period = Math.min(...streams.map((s) => s.period));
  await new Promise<void>((resolve) => {
    let i = 0;
    const tick = (): void => {
      const now = performance.now();
      streams.forEach((s, index) => {
        if ((i * period) % s.period !== 0 || i * period >= seconds * 1000) return;
        const message = new Uint8Array(s.size);
        const view = new DataView(message.buffer);
        view.setFloat64(0, now);
        view.setUint8(8, index);
        view.setUint32(9, (i * period) / s.period);
        channels[index]!.send(message).subscribe({ error: (error: unknown) => void (error instanceof MessageExpiredError && index === 0 && expired++) });
      });
      if (++i * period >= seconds * 1000) return resolve();
      setTimeout(tick, Math.max(0, t0 + i * period - performance.now()));
    };
    tick();
  });
  stopBulk = true;
  clearInterval(pacer);
  // A ttl stream never completes for sure (abandoned messages): wait out the ttl, plus the path.
  const drain = reliable ? DRAIN_MS : 2 * Math.max(...streams.map((s) => s.ttl ?? 0)) + 4 * DELAY;
  await Promise.race([delivered, new Promise((resolve) => setTimeout(resolve, drain))]);
  const report: ScenarioReport = {
    sent: counts[0]!,
    delivered: latencies.length,
    inOrder,
    latency: summarize(latencies),
    expired,
    retransmissions: aConn.stats.retransmissions,
    bulkMiBps: variant.bulk !== undefined && bulkFirst !== undefined ? bulkBytes / 2 ** 20 / ((bulkLast - bulkFirst) / 1000) : undefined,
    lateness: model.lateness.length > 0 ? summarize(model.lateness) : undefined,
    eventLoop: loopDelaySummary(loopDelay),
    cpuSeconds: cpuSeconds(cpu0).total,
  };
  emit({ type: 'report', report });
  process.exit(0);
}

type Outcome = ScenarioReport | string;

async function run(flags: Flags): Promise<BenchResult> {
  const quick = flags.has('quick');
  const seconds = flagNumber(flags, 'seconds', quick ? 8 : 15);
  const runs = flagNumber(flags, 'runs', quick ? 1 : 3);
  const serial = flagBool(flags, 'serial');
  const limit = seconds * 1000 + DRAIN_MS + 30_000;
  const runVariant = async (name: string, variant: string, seed: number): Promise<Outcome> => {
    const child = new Child(`channels:${name}:${variant}`, __filename, ['--role', 'scenario', '--case', name, '--variant', variant, '--seconds', String(seconds), '--seed', String(seed)], {
      timeoutMs: limit + 5000,
    });
    try {
      return (await child.next<Message & { report: ScenarioReport }>('report', limit)).report;
    } catch (error) {
      return error instanceof Error ? error.message.split('\n')[0]! : String(error);
    } finally {
      await child.stop(1000);
    }
  };
  // outcomes[case][variant][run]
  const outcomes: Record<string, Record<string, Outcome[]>> = {};
  for (let r = 0; r < runs; r++) {
    for (const [name, variants] of Object.entries(CASES)) {
      const names = Object.keys(variants);
      // The light cases' variants run side by side (equal load on each); bulk ones never do.
      const results: Outcome[] = [];
      if (serial || name === 'bulk') for (const v of names) results.push(await runVariant(name, v, r + 1));
      else results.push(...(await Promise.all(names.map((v) => runVariant(name, v, r + 1)))));
      names.forEach((v, i) => ((outcomes[name] ??= {})[v] ??= []).push(results[i]!));
    }
  }

  const ok = (list: readonly Outcome[]): ScenarioReport[] => list.filter((o): o is ScenarioReport => typeof o !== 'string');
  const p99 = (name: string, variant: string): number => median(ok(outcomes[name]![variant]!).map((o) => o.latency.p99));
  const rows = Object.entries(outcomes).flatMap(([name, variants]) =>
    Object.entries(variants).map(([variant, list]) => {
      const good = ok(list);
      const failed = list.filter((o): o is string => typeof o === 'string');
      const med = (f: (o: ScenarioReport) => number, digits = 1): string => (good.length === 0 ? 'n/a' : fmt(median(good.map(f)), digits));
      const loss = lossLabel(CASES[name]![variant]!.loss);
      return [
        `${name}: ${variant} (${loss})`,
        `${good.length}/${list.length}${failed.length > 0 ? ` (FAILED: ${failed[0]})` : ''}`,
        good.map((o) => `${o.delivered}/${o.sent}${o.inOrder ? '' : ' OUT OF ORDER'}`).join(', '),
        med((o) => o.latency.mean),
        med((o) => o.latency.p50),
        med((o) => o.latency.p90),
        med((o) => o.latency.p99),
        good.map((o) => fmt(o.latency.p99)).join(', '),
        med((o) => o.latency.max),
        med((o) => o.expired, 0),
        med((o) => o.retransmissions, 0),
        good.some((o) => o.bulkMiBps !== undefined) ? med((o) => o.bulkMiBps ?? NaN) : '',
        good.length === 0 ? 'n/a' : `${fmt(median(good.map((o) => o.lateness?.p99 ?? NaN)))} / ${fmt(median(good.map((o) => o.eventLoop.p99)))}`,
        med((o) => o.cpuSeconds, 2),
      ];
    }),
  );
  const pct = (a: number, b: number): string => `${a >= b ? '+' : ''}${fmt(((a - b) / b) * 100)} %`;
  const two = p99('isolation', 'two');
  const alone = p99('isolation', 'alone');
  const one = p99('isolation', 'one');
  const positions = ok(outcomes['position']!['ttl']!);
  const ttlP99 = p99('position', 'ttl');
  const fraction = median(positions.map((o) => o.delivered / o.sent));
  const control = p99('bulk', 'alone');
  const withBulk = p99('bulk', 'with bulk');
  const paced = p99('bulk', 'with bulk at 8 MiB/s');
  const verdicts = [
    `- Isolation: channel 2's p99 beside a losing channel 1 is ${fmt(two)} ms vs ${fmt(alone)} ms alone (${pct(two, alone)}; target within 10 %: ${two <= alone * 1.1 ? 'met' : 'MISSED'}), and ${fmt(one)} ms with both streams on one channel (${pct(one, two)} above two channels; target clearly above: ${one > two * 1.1 ? 'met' : 'MISSED'}).`,
    `- Position: p99 of the delivered ${fmt(ttlP99)} ms (target ≤ 50 ms: ${ttlP99 <= 50 ? 'met' : 'MISSED'}), ${fmt(fraction * 100)} % delivered (median of runs).`,
    `- Bulk: the control channel's p99 is ${fmt(withBulk)} ms with the bulk transfer vs ${fmt(control)} ms alone (${withBulk >= control ? '+' : ''}${fmt(withBulk - control)} ms; target ≤ +5 ms: ${withBulk - control <= 5 ? 'met' : 'MISSED'}); paced at 8 MiB/s: ${fmt(paced)} ms (${paced >= control ? '+' : ''}${fmt(paced - control)} ms).`,
  ];
  const markdown = [
    `### Channels: real time, one-way delay ${DELAY} ms, ${seconds} s per variant, ${runs} run${runs === 1 ? '' : 's'}`,
    '',
    table(
      ['case: variant (loss each way)', 'runs ok', 'delivered per run', 'one-way mean ms (median)', 'p50 ms', 'p90 ms', 'p99 ms (median)', 'p99 per run', 'max ms (median)', 'expired', 'retx by A', 'bulk MiB/s', 'timer lateness / event-loop delay p99 ms', 'CPU s'],
      rows,
    ),
    '',
    ...verdicts,
    '',
    'At 5 % loss a p99 is set by the retransmission of the stream\'s own losses in every isolation variant; the mean and p90 show what the other stream\'s losses add. ' +
      'Latency is of the first stream (channel 2 in isolation, the position or control channel otherwise); medians are over runs. ' +
      'isolation "one" puts both streams on channel 1, so a loss of either holds back both. "delivered" with a ttl counts what arrived; ' +
      '"expired" counts send() calls that ended with MessageExpiredError (a message can arrive and still expire, when its acknowledgement is lost). ' +
      'The network has no bandwidth limit, so the bulk case measures the sender\'s scheduling and the CPU both ends share in one process. ' +
      (serial ? 'Variants ran one after the other.' : 'Variants of the isolation and position cases ran in parallel, one process each; bulk variants one after the other.'),
  ].join('\n');
  return { name: 'channels', title: 'Channels', markdown, data: { seconds, runs, outcomes }, seconds: 0 };
}

benchMain((flags) => {
  const seconds = flagNumber(flags, 'seconds', flags.has('quick') ? 8 : 15);
  const runs = flagNumber(flags, 'runs', flags.has('quick') ? 1 : 3);
  return runs * (seconds * 1000 + DRAIN_MS + 10_000) * 8 + 60_000;
}, run, { scenario });
