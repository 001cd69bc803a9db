/**
 * Channels over a real kernel path: does a loss or a bulk transfer on one channel delay another?
 * Two network namespaces (ruA 10.77.0.1, ruB 10.77.0.2) joined by the link emulator in
 * shared/tools/linkem, 10 ms one way, as bench/path.ts uses them. Each variant's receiver runs in
 * its own process in ruA and its sender in its own process in ruB (bench/channels-peer.ts), so
 * the two ends share no event loop; --runs N repeats every case, interleaved.
 *
 * - isolation (5 % random loss each way): 1 KiB at 100 msg/s on channel 1 and on channel 2.
 *   Channel 2's one-way latency with channel 1 beside it ("two"), with channel 1 silent
 *   ("alone"), and with both streams on one channel ("one", where every loss holds back both).
 * - position (10 % each way): 16 B every 20 ms on a channel with ttl 50 ms; the delivered
 *   fraction and the latency of what was delivered, beside the same channel without a ttl.
 * - bulk (no loss, a 100 Mbit/s bottleneck each way with a drop-tail queue of 200 packets, ~1
 *   bandwidth-delay product): 1 KiB at 100 msg/s on a control channel (priority 0), alone, beside
 *   a bulk transfer of 64 KiB messages on a channel of priority -1 as fast as the windows allow
 *   (at most 4 MiB queued), and beside one paced at 8 MiB/s (67 Mbit/s, under the bottleneck).
 *
 * One-way latency = arrival − the CLOCK_MONOTONIC stamp the sender wrote into the message
 * (process.hrtime.bigint() in both processes, one kernel clock). Beside the channels a raw UDP
 * probe (16 B every 10 ms, sender → receiver) measures what the path itself adds: the bottleneck's
 * queue, linkem, the kernel and the receiver's event loop; what the control channel has above the
 * probe was added in the sender. The variants of the isolation and position cases run side by side
 * (a process pair each, other ports, the same link); the bulk variants one after the other.
 *
 * Without the emulator (not root, no /dev/net/tun, …) or with --virtual, the earlier in-process
 * version runs instead: both ends in one process over the VirtualNetwork, no bandwidth limit.
 *
 *   node bench/dist/bench/channels.js [--quick] [--seconds N] [--runs N] [--serial] [--virtual]
 *     [--cases isolation,position,bulk] [--rate 100] [--queue 200]
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { realTimeScheduler, connect, listen, DEFAULTS, type Channel, type Connection } from '../lib/index';
import { VirtualNetwork } from '../lib/testing/index';
import { BULK_CHANNEL, CASES, sendStreams, startBulk, EXCESS_LATE_MS, PROBE_PERIOD_MS, STEADY_AFTER_MS, PROBE_SIZE, variantOf, type ReceiverReport, type SenderReport, type Variant } from './channels-peer';
import { benchMain, cpuSeconds, loopDelaySummary, LOOP_RESOLUTION_MS, flagBool, flagNumber, flagString, machineInfo, table, type BenchResult, type Flags } from './lib/common';
import { LinkModel, lossLabel, type LossSpec } from './lib/link';
import { IP_A, IP_B, LINKEM_DIR, LinkPath, NS_A, NS_B, counterDelta, impairmentArgs, linkemUnavailable, type Impairment, type LinkDelta } from './lib/linkem';
import { Child, childGuard, emit, sleep, type Message } from './lib/proc';
import { fmt, max, median, summarize, type Summary } from './lib/stats';

const PEER = path.join(__dirname, 'channels-peer.js');
const DELAY_MS = 10;
const DRAIN_MS = 5_000;
/** Receivers listen on BASE_PORT + 2 i, their probe socket on the next port. */
const BASE_PORT = 47100;
/** A probe datagram as linkem counts it: payload + UDP and IPv4 headers. */
const PROBE_IP_BYTES = PROBE_SIZE + 8 + 20;
/** rx-rudp's DATA datagram at its default size, as an IP packet (for the queue's length in ms). */
const DATA_IP_BYTES = DEFAULTS.maxDatagramSize + 8 + 20;

const ms = (error: unknown): string => (error instanceof Error ? error.message.split('\n')[0]! : String(error));
const med = (values: readonly number[]): number => median(values.filter((v) => Number.isFinite(v)));
const signed = (v: number, digits = 1): string => `${v >= 0 ? '+' : ''}${fmt(v, digits)}`;
const pct = (a: number, b: number): string => `${signed(((a - b) / b) * 100)} %`;
const judge = (ok: boolean, value: number): string => (!Number.isFinite(value) ? 'no measurement' : ok ? 'met' : 'MISSED');

interface Bottleneck {
  readonly rateMbit: number;
  readonly queuePackets: number;
}

function impairment(v: Variant, b: Bottleneck): Impairment {
  const parts = [`delay=${DELAY_MS}`, ...(v.loss > 0 ? [`loss=${v.loss}`] : []), ...(v.bottleneck === true ? [`rate=${b.rateMbit}`, `queue=${b.queuePackets}`] : [])];
  return { both: parts.join(',') };
}

function linkLabel(v: Variant, b: Bottleneck): string {
  return [v.loss > 0 ? `${v.loss} % loss each way` : 'no loss', ...(v.bottleneck === true ? [`${b.rateMbit} Mbit/s, queue ${b.queuePackets}`] : [])].join(', ');
}

// ---- over the kernel path -------------------------------------------------------------------------------

/** One variant of one run over the path. */
interface PathOutcome {
  readonly case: string;
  readonly variant: string;
  readonly run: number;
  readonly seed: number;
  readonly ok: boolean;
  readonly error?: string;
  readonly receiver?: ReceiverReport;
  readonly sender?: SenderReport;
  /** The link's counters over the slot this variant ran in (shared by `variants` side by side). */
  readonly link?: SlotLink;
}

interface SlotLink {
  readonly variants: number;
  /** B → A (data direction): IP packets entering the link, of them the probes', lost to the configured loss, dropped by the full bottleneck queue. */
  readonly ba: { readonly datagrams: number; readonly probes: number; readonly lost: number; readonly queueDrops: number; readonly bytes: number };
  /** A → B (acknowledgements). */
  readonly ab: { readonly datagrams: number; readonly lost: number; readonly queueDrops: number; readonly bytes: number };
  /** Drops that are the harness's, not the emulated path's (linkem memory, TUN write): should be 0. */
  readonly harnessDrops: number;
  readonly linkemCpuSeconds: number;
}

function slotLink(d: LinkDelta, variants: number, probes: number): SlotLink {
  return {
    variants,
    ba: { datagrams: d.ba.in_pkts, probes, lost: d.ba.drop_loss, queueDrops: d.ba.drop_queue, bytes: d.ba.in_bytes },
    ab: { datagrams: d.ab.in_pkts, lost: d.ab.drop_loss, queueDrops: d.ab.drop_queue, bytes: d.ab.in_bytes },
    harnessDrops: d.ab.drop_mem + d.ab.drop_write + d.ba.drop_mem + d.ba.drop_write,
    linkemCpuSeconds: d.cpuSeconds,
  };
}

interface Slot {
  readonly link: LinkPath;
  readonly name: string;
  readonly variants: readonly string[];
  readonly run: number;
  readonly seed: number;
  readonly seconds: number;
  readonly bottleneck: Bottleneck;
  readonly dump: string | undefined;
}

/** Runs the given variants of one case side by side over the link, one receiver and one sender process each. */
async function runSlot(s: Slot): Promise<PathOutcome[]> {
  const specs = s.variants.map((v) => CASES[s.name]![v]!);
  const imp = impairment(specs[0]!, s.bottleneck);
  const limit = s.seconds * 1000 + DRAIN_MS + 30_000;
  interface Pair {
    readonly variant: string;
    readonly spec: Variant;
    readonly receiver: Child;
    sender?: Child;
    error?: string;
    receiverReport?: ReceiverReport;
    senderReport?: SenderReport;
  }
  const pairs: Pair[] = [];
  let link: SlotLink | undefined;
  try {
    s.link.up(imp, s.seed); // resets linkem's random streams: every run at one seed starts alike
    s.variants.forEach((variant, i) => {
      const args = ['--case', s.name, '--variant', variant, '--seconds', String(s.seconds), '--limit', String(limit)];
      const receiver = new Child(`channels:${s.name}:${variant}:receiver`, PEER, ['--role', 'receiver', '--host', IP_A, '--port', String(BASE_PORT + 2 * i), '--probe-port', String(BASE_PORT + 2 * i + 1), ...(s.dump === undefined ? [] : ['--keep-latencies', '1']), ...args], {
        timeoutMs: limit + 10_000,
        netns: NS_A,
      });
      pairs.push({ variant, spec: specs[i]!, receiver });
    });
    const ports = await Promise.all(
      pairs.map((p) =>
        p.receiver.next<Message & { port: number }>('ready', 15_000).then(
          (m) => m.port,
          (e: unknown) => void (p.error = ms(e)),
        ),
      ),
    );
    const before = await s.link.counters();
    pairs.forEach((p, i) => {
      if (p.error !== undefined) return;
      const args = ['--case', s.name, '--variant', p.variant, '--seconds', String(s.seconds), '--limit', String(limit)];
      p.sender = new Child(`channels:${s.name}:${p.variant}:sender`, PEER, ['--role', 'sender', '--host', IP_A, '--port', String(ports[i]), '--probe-port', String(BASE_PORT + 2 * i + 1), ...args], {
        timeoutMs: limit + 10_000,
        netns: NS_B,
      });
    });
    await Promise.all(
      pairs.map(async (p) => {
        if (p.sender === undefined) return;
        try {
          await p.sender.next('sent', s.seconds * 1000 + 15_000);
          const ttls = p.spec.streams.map((x) => x.ttl ?? 0);
          if (ttls.every((t) => t === 0)) {
            await p.receiver.next('done', DRAIN_MS).catch((e: unknown) => {
              throw new Error(/no 'done' message/.test(ms(e)) ? `not everything delivered within ${DRAIN_MS / 1000} s of the last send` : ms(e));
            });
          } else {
            // A ttl stream never completes for sure (abandoned messages): wait out the ttl, plus the path.
            await sleep(2 * Math.max(...ttls) + 4 * DELAY_MS);
          }
        } catch (e) {
          p.error = ms(e);
        }
      }),
    );
    await sleep(200); // the last acknowledgements cross the link before the second snapshot
    const after = await s.link.counters();
    await Promise.all(
      pairs.map(async (p) => {
        try {
          p.receiver.send({ type: 'finish' });
          p.receiverReport = (await p.receiver.next<Message & { report: ReceiverReport; latencies?: number[] }>('report', 5000).then((m) => {
            if (s.dump !== undefined && m.latencies !== undefined) {
              mkdirSync(s.dump, { recursive: true });
              writeFileSync(path.join(s.dump, `${s.name}-${p.variant.replace(/[^a-z0-9]+/gi, '_')}-run${s.run}.json`), JSON.stringify(m.latencies));
            }
            return m;
          })).report;
          if (p.sender !== undefined) {
            p.sender.send({ type: 'exit' });
            p.senderReport = (await p.sender.next<Message & { report: SenderReport }>('stats', 5000)).report;
          }
        } catch (e) {
          p.error ??= ms(e);
        }
      }),
    );
    link = slotLink(counterDelta(before, after), pairs.length, pairs.reduce((n, p) => n + (p.senderReport?.probeSent ?? 0), 0));
  } catch (e) {
    for (const p of pairs) p.error ??= ms(e);
    if (pairs.length === 0) return s.variants.map((variant) => ({ case: s.name, variant, run: s.run, seed: s.seed, ok: false, error: ms(e) }));
  } finally {
    await Promise.all(pairs.flatMap((p) => [p.sender?.stop(1500), p.receiver.stop(1500)]));
  }
  return pairs.map((p) => {
    const r = p.receiverReport;
    const complete = r !== undefined && p.senderReport !== undefined && r.inOrder && r.duplicates === 0 && (p.spec.streams[0]!.ttl !== undefined || r.delivered === p.senderReport.sent);
    const error = p.error ?? (complete ? undefined : r === undefined ? 'no report' : `${r.delivered} of ${p.senderReport?.sent ?? '?'} delivered${r.inOrder ? '' : ', OUT OF ORDER'}${r.duplicates > 0 ? `, ${r.duplicates} duplicates` : ''}`);
    return {
      case: s.name,
      variant: p.variant,
      run: s.run,
      seed: s.seed,
      ok: error === undefined,
      ...(error === undefined ? {} : { error }),
      ...(r === undefined ? {} : { receiver: r }),
      ...(p.senderReport === undefined ? {} : { sender: p.senderReport }),
      ...(link === undefined ? {} : { link }),
    };
  });
}

interface PathPlan {
  readonly seconds: number;
  readonly runs: number;
  readonly serial: boolean;
  readonly cases: string[];
  readonly bottleneck: Bottleneck;
}

function pathPlan(flags: Flags): PathPlan {
  const quick = flags.has('quick');
  const cases = (flagString(flags, 'cases') ?? Object.keys(CASES).join(',')).split(',').filter((c) => c !== '');
  for (const c of cases) if (CASES[c] === undefined) throw new Error(`--cases: unknown '${c}' (known: ${Object.keys(CASES).join(', ')})`);
  return {
    seconds: flagNumber(flags, 'seconds', quick ? 8 : 15),
    runs: flagNumber(flags, 'runs', quick ? 1 : 3),
    serial: flagBool(flags, 'serial'),
    cases,
    bottleneck: { rateMbit: flagNumber(flags, 'rate', 100), queuePackets: flagNumber(flags, 'queue', 200) },
  };
}

/** Slots of one run: the light cases' variants side by side (unless --serial), bulk ones alone. */
function slotsOf(p: PathPlan): { name: string; variants: string[] }[] {
  return p.cases.flatMap((name) => {
    const variants = Object.keys(CASES[name]!);
    return p.serial || name === 'bulk' ? variants.map((v) => ({ name, variants: [v] })) : [{ name, variants }];
  });
}

/** Upper bound of the whole path run, ms (the process limit and the path's watchdog). */
function pathLimitMs(p: PathPlan): number {
  return p.runs * slotsOf(p).length * (p.seconds * 1000 + DRAIN_MS + 50_000) + 120_000;
}

async function runPath(flags: Flags): Promise<BenchResult> {
  const p = pathPlan(flags);
  let link: LinkPath;
  try {
    link = LinkPath.acquire(pathLimitMs(p) / 1000 + 300);
  } catch (e) {
    return { name: 'channels', title: 'Channels', markdown: `### Channels over a real kernel path (linkem)\n\nNot run: ${ms(e)}.`, data: { notRun: ms(e) }, seconds: 0 };
  }
  const begun = Date.now();
  const outcomes: PathOutcome[] = [];
  let setup: Record<string, unknown> = {};
  const dump = process.env['BENCH_CHANNELS_DUMP'];
  try {
    link.up({ both: `delay=${DELAY_MS}` }, 1);
    const dev = link.exec(NS_A, ['ip', '-o', 'link', 'show', `${NS_A}0`]) ?? '';
    setup = {
      linkem: LINKEM_DIR,
      linkemSourceSha256: createHash('sha256').update(readFileSync(path.join(LINKEM_DIR, 'linkem.c'))).digest('hex').slice(0, 16),
      namespaces: `${NS_A} ${IP_A} (receivers) ↔ ${NS_B} ${IP_B} (senders)`,
      device: `${/mtu (\d+)/.exec(dev)?.[0] ?? 'mtu ?'}, ${/qlen (\d+)/.exec(dev)?.[0] ?? 'qlen ?'}`,
      rmemMax: link.sysctl(NS_A, 'net.core.rmem_max'),
      wmemMax: link.sysctl(NS_A, 'net.core.wmem_max'),
      impairments: Object.fromEntries(p.cases.map((c) => [c, impairmentArgs(impairment(Object.values(CASES[c]!)[0]!, p.bottleneck), 0).slice(0, -2).join(' ')])),
      rudpDefaults: { maxDatagramSize: DEFAULTS.maxDatagramSize, receiveWindow: DEFAULTS.receiveWindow, maxBufferedBytes: DEFAULTS.maxBufferedBytes },
    };
    process.stderr.write(`channels: setup ${JSON.stringify(setup)}\n`);
    for (let r = 0; r < p.runs; r++) {
      for (const slot of slotsOf(p)) {
        const results = await runSlot({ link, name: slot.name, variants: slot.variants, run: r + 1, seed: r + 1, seconds: p.seconds, bottleneck: p.bottleneck, dump });
        outcomes.push(...results);
        for (const o of results) {
          const l = o.receiver?.latency;
          process.stderr.write(
            `channels run ${o.run} ${o.case}: ${o.variant}: ${o.ok ? '' : `FAILED ${o.error}; `}p50 ${fmt(l?.p50, 2)} p99 ${fmt(l?.p99)} max ${fmt(l?.max)} ms, ${o.receiver?.delivered ?? '?'}/${o.sender?.sent ?? '?'}, probe p99 ${fmt(o.receiver?.probe.latency.p99)} ms` +
              `${o.receiver?.bulkMiBps !== undefined ? `, bulk ${fmt(o.receiver.bulkMiBps)} MiB/s` : ''}; datagrams sent ${o.sender?.transport['packetsSent'] ?? '?'} / ${o.receiver?.transport['packetsSent'] ?? '?'}` +
              `; link B→A ${o.link?.ba.datagrams ?? '?'} (${o.link?.ba.lost ?? '?'} lost, ${o.link?.ba.queueDrops ?? '?'} queue drops)${o.link && o.link.variants > 1 ? ` for ${o.link.variants} variants` : ''}\n`,
          );
        }
      }
    }
  } finally {
    link.downSync();
  }
  const seconds = (Date.now() - begun) / 1000;
  return pathReport(p, outcomes, setup, seconds);
}

function pathReport(p: PathPlan, outcomes: readonly PathOutcome[], setup: Record<string, unknown>, elapsed: number): BenchResult {
  const of = (name: string, variant: string): PathOutcome[] => outcomes.filter((o) => o.case === name && o.variant === variant);
  const good = (name: string, variant: string): PathOutcome[] => of(name, variant).filter((o) => o.ok);
  const stat = (name: string, variant: string, f: (o: PathOutcome) => number): number => med(good(name, variant).map(f));
  const p99 = (name: string, variant: string): number => stat(name, variant, (o) => o.receiver!.latency.p99);
  const perRun = (list: readonly PathOutcome[], f: (o: PathOutcome) => number, digits = 1): string => list.map((o) => fmt(f(o), digits)).join(', ');

  const rows: string[][] = [];
  for (const name of p.cases) {
    for (const [variant, spec] of Object.entries(CASES[name]!)) {
      const all = of(name, variant);
      if (all.length === 0) continue;
      const ok = all.filter((o) => o.ok);
      const failed = all.filter((o) => !o.ok);
      const m = (f: (o: PathOutcome) => number, digits = 1): string => (ok.length === 0 ? 'n/a' : fmt(med(ok.map(f)), digits));
      const probeLost = (o: PathOutcome): number => (100 * (o.sender!.probeSent - o.receiver!.probe.received)) / o.sender!.probeSent;
      const lostPct = (o: PathOutcome): number => (o.link === undefined ? NaN : (100 * o.link.ba.lost) / o.link.ba.datagrams);
      rows.push([
        `${name}: ${variant} (${linkLabel(spec, p.bottleneck)})`,
        `${ok.length}/${all.length}${failed.length > 0 ? ` (FAILED: ${failed[0]!.error})` : ''}`,
        all.map((o) => `${o.receiver?.delivered ?? '?'}/${o.sender?.sent ?? '?'}${o.receiver !== undefined && !o.receiver.inOrder ? ' OUT OF ORDER' : ''}`).join(', '),
        m((o) => o.receiver!.latency.mean),
        m((o) => o.receiver!.latency.p50, 2),
        m((o) => o.receiver!.latency.p90),
        m((o) => o.receiver!.latency.p99),
        perRun(ok, (o) => o.receiver!.latency.p99),
        m((o) => o.receiver!.latency.max),
        m((o) => o.receiver!.steady.p99),
        `${m((o) => o.receiver!.excess.p50, 2)} / ${m((o) => o.receiver!.excess.p99)} / ${m((o) => o.receiver!.excessLate, 0)}`,
        `${m((o) => o.receiver!.probe.latency.p50, 2)} / ${m((o) => o.receiver!.probe.latency.p99)} / ${m(probeLost)}`,
        m((o) => o.sender!.expired, 0),
        m((o) => o.sender!.transport['retransmissions'] ?? NaN, 0),
        `${m((o) => o.sender!.transport['packetsSent'] ?? NaN, 0)} / ${m((o) => o.receiver!.transport['packetsSent'] ?? NaN, 0)}`,
        `${m(lostPct)} / ${m((o) => o.link?.ba.queueDrops ?? NaN, 0)}${ok[0]?.link !== undefined && ok[0].link.variants > 1 ? ` (${ok[0].link.variants} side by side)` : ''}`,
        spec.bulk !== undefined ? m((o) => o.receiver!.bulkMiBps ?? NaN) : '',
        `${m((o) => o.sender!.sampled.rttMs)} / ${m((o) => o.sender!.sampled.inFlightBytes / 1024, 0)}`,
        `${m((o) => o.sender!.eventLoop.p99)} / ${m((o) => o.receiver!.eventLoop.p99)}`,
        `${m((o) => o.sender!.cpuSeconds, 2)} / ${m((o) => o.receiver!.cpuSeconds, 2)}`,
      ]);
    }
  }

  const verdicts: string[] = [];
  if (p.cases.includes('isolation')) {
    const two = p99('isolation', 'two');
    const alone = p99('isolation', 'alone');
    const one = p99('isolation', 'one');
    verdicts.push(
      `- Isolation (5 % each way, 10 ms one-way): channel 2's p99 beside a losing channel 1 is ${fmt(two)} ms vs ${fmt(alone)} ms alone (${pct(two, alone)}; target within 10 %: ${judge(two <= alone * 1.1, two / alone)}), ` +
        `and ${fmt(one)} ms with both streams on one channel (${pct(one, two)} above two channels; target clearly above, taken as > 10 %: ${judge(one > two * 1.1, one / two)}). ` +
        `Per run: two ${perRun(good('isolation', 'two'), (o) => o.receiver!.latency.p99)}, alone ${perRun(good('isolation', 'alone'), (o) => o.receiver!.latency.p99)}, one ${perRun(good('isolation', 'one'), (o) => o.receiver!.latency.p99)} ms.`,
    );
  }
  if (p.cases.includes('position')) {
    const ttl = p99('position', 'ttl');
    const reliable = p99('position', 'reliable');
    const fraction = stat('position', 'ttl', (o) => o.receiver!.delivered / o.sender!.sent);
    verdicts.push(
      `- Position (10 % each way, ttl 50): p99 of the delivered ${fmt(ttl)} ms (target ≤ 50 ms: ${judge(ttl <= 50, ttl)}; per run ${perRun(good('position', 'ttl'), (o) => o.receiver!.latency.p99)}), ` +
        `${fmt(fraction * 100)} % delivered, ${fmt(stat('position', 'ttl', (o) => o.sender!.expired), 0)} sends expired (medians of runs); the same channel without a ttl: p99 ${fmt(reliable)} ms, max ${fmt(stat('position', 'reliable', (o) => o.receiver!.latency.max))} ms.`,
    );
  }
  let bulkNote = '';
  if (p.cases.includes('bulk')) {
    const control = p99('bulk', 'alone');
    const withBulk = p99('bulk', 'with bulk');
    const paced = p99('bulk', 'with bulk at 8 MiB/s');
    const probe = (v: string, f: (s: Summary) => number): number => stat('bulk', v, (o) => f(o.receiver!.probe.latency));
    const ctl = (v: string, f: (s: Summary) => number): number => stat('bulk', v, (o) => f(o.receiver!.latency));
    const probeLoss = (v: string): number => stat('bulk', v, (o) => (100 * (o.sender!.probeSent - o.receiver!.probe.received)) / o.sender!.probeSent);
    const excess = (v: string, f: (s: Summary) => number): number => stat('bulk', v, (o) => f(o.receiver!.excess));
    const late = (v: string): number => stat('bulk', v, (o) => (100 * o.receiver!.excessLate) / o.receiver!.delivered);
    const steady = (v: string): number => stat('bulk', v, (o) => o.receiver!.steady.p99);
    const queueRise = probe('with bulk', (s) => s.p99) - probe('alone', (s) => s.p99);
    const queueMs = (p.bottleneck.queuePackets * DATA_IP_BYTES * 8) / (p.bottleneck.rateMbit * 1000);
    const where = (v: string, label: string): string =>
      `${label}: the probe ${fmt(probe(v, (s) => s.p50), 2)} / ${fmt(probe(v, (s) => s.p99))} ms (${fmt(probeLoss(v))} % of probes dropped), the control channel ${fmt(ctl(v, (s) => s.p50), 2)} / ${fmt(ctl(v, (s) => s.p99))} ms, ` +
      `its excess over the probe ${fmt(excess(v, (s) => s.p50), 2)} / ${fmt(excess(v, (s) => s.p99))} ms with ${fmt(late(v))} % of its messages more than ${EXCESS_LATE_MS} ms over it; p99 after the first ${STEADY_AFTER_MS / 1000} s ${fmt(steady(v))} ms`;
    verdicts.push(
      `- Bulk (no loss, 10 ms one-way, ${p.bottleneck.rateMbit} Mbit/s bottleneck with a ${p.bottleneck.queuePackets}-packet drop-tail queue): the control channel's p99 is ${fmt(withBulk)} ms beside the unpaced bulk transfer vs ${fmt(control)} ms alone ` +
        `(${signed(withBulk - control)} ms; target ≤ +5 ms: ${judge(withBulk - control <= 5, withBulk - control)}; per run ${perRun(good('bulk', 'with bulk'), (o) => o.receiver!.latency.p99)} vs ${perRun(good('bulk', 'alone'), (o) => o.receiver!.latency.p99)}); ` +
        `beside the bulk paced at 8 MiB/s: ${fmt(paced)} ms (${signed(paced - control)} ms: ${judge(paced - control <= 5, paced - control)}).`,
      `- Where it comes from (p50 / p99, medians of runs; the probe crosses the same queue but no transport, a full queue adds ${fmt(queueMs)} ms): ` +
        `${where('alone', 'alone')}; ${where('with bulk', 'unpaced bulk')}; ${where('with bulk at 8 MiB/s', 'bulk at 8 MiB/s')}. ` +
        `So of the unpaced case's ${signed(withBulk - control)} ms at p99, ${signed(queueRise)} ms is the queue's delay (the probe's p99 rise) and the rest the transport's excess over a raw datagram: ` +
        `a message more than ${EXCESS_LATE_MS} ms over the probe waited for a resend (of its own packet, dropped at the queue, or of one ahead of it on its ordered channel) or was held that long in the sender, while the excess p50 is what the sender's scheduling adds to a typical message. ` +
        `The sender with the unpaced bulk: smoothed RTT ${fmt(stat('bulk', 'with bulk', (o) => o.sender!.sampled.rttMs))} ms (alone ${fmt(stat('bulk', 'alone', (o) => o.sender!.sampled.rttMs))}), ${fmt(stat('bulk', 'with bulk', (o) => o.sender!.sampled.inFlightBytes / 1024), 0)} KiB in flight ` +
        `(bandwidth-delay product ${fmt((p.bottleneck.rateMbit * 1e6 * 2 * (DELAY_MS / 1000)) / 8 / 1024, 0)} KiB, the queue ${fmt((p.bottleneck.queuePackets * DATA_IP_BYTES) / 1024, 0)} KiB); bottleneck queue drops per run ${perRun(good('bulk', 'with bulk'), (o) => o.link?.ba.queueDrops ?? NaN, 0)} (paced: ${perRun(good('bulk', 'with bulk at 8 MiB/s'), (o) => o.link?.ba.queueDrops ?? NaN, 0)}); bulk goodput ${fmt(stat('bulk', 'with bulk', (o) => o.receiver!.bulkMiBps ?? NaN))} MiB/s.`,
    );
    bulkNote =
      `Bulk case link: \`rate=${p.bottleneck.rateMbit}\` Mbit/s and \`queue=${p.bottleneck.queuePackets}\` packets each way, linkem's drop-tail queue in front of its serialiser (${p.bottleneck.queuePackets} packets of ${DATA_IP_BYTES} B = ${fmt(queueMs)} ms at the rate, about one bandwidth-delay product of the 20 ms round trip: a router's classic buffer, neither bloated nor shallow). `;
  }
  const loops = outcomes.filter((o) => o.ok && o.sender !== undefined && o.receiver !== undefined);
  const noise = p.cases
    .map((name) => {
      const list = loops.filter((o) => o.case === name);
      if (list.length === 0) return '';
      return `${name}: sender ${fmt(max(list.map((o) => o.sender!.eventLoop.p99)))} / ${fmt(max(list.map((o) => o.sender!.eventLoop.max)))}, receiver ${fmt(max(list.map((o) => o.receiver!.eventLoop.p99)))} / ${fmt(max(list.map((o) => o.receiver!.eventLoop.max)))}`;
    })
    .filter((x) => x !== '');
  const probeFloor = p.cases.filter((c) => c !== 'bulk').map((c) => `${c} ${fmt(med(loops.filter((o) => o.case === c).map((o) => o.receiver!.probe.latency.p50)), 2)} / ${fmt(med(loops.filter((o) => o.case === c).map((o) => o.receiver!.probe.latency.p99)))}`);
  verdicts.push(
    `- Machine noise (not a target): event-loop delay p99 / max ms, worst process of any run, ${noise.join('; ')}. ` +
      `${probeFloor.length > 0 ? `The probe's p50 / p99 (which nothing resends) in the light cases, ${probeFloor.join(', ')} ms, over a ${DELAY_MS} ms floor, is what the kernel, linkem and the receiver's loop add to every figure. ` : ''}` +
      `Harness drops (linkem memory / TUN write): ${outcomes.reduce((n, o) => n + (o.link?.harnessDrops ?? 0), 0)} (per slot, summed).`,
  );

  const machine = machineInfo();
  const markdown = [
    `### Channels over a real kernel path (linkem, two network namespaces, each end in its own process): one-way delay ${DELAY_MS} ms, ${p.seconds} s per variant, ${p.runs} run${p.runs === 1 ? '' : 's'} (seeds ${Array.from({ length: p.runs }, (_, i) => i + 1).join(', ')}), interleaved`,
    '',
    table(
      [
        'case: variant (link)',
        'runs ok',
        'delivered per run',
        'one-way mean ms',
        'p50 ms',
        'p90 ms',
        'p99 ms (median)',
        'p99 per run',
        'max ms',
        `p99 after ${STEADY_AFTER_MS / 1000} s`,
        `over the probe: p50 / p99 ms / > ${EXCESS_LATE_MS} ms`,
        'probe p50 / p99 ms / lost %',
        'expired',
        'retx by sender',
        'datagrams sent: sender / receiver',
        'link B→A lost % / queue drops',
        'bulk MiB/s',
        'sender srtt ms / in flight KiB',
        'event-loop p99 ms: sender / receiver',
        'CPU s: sender / receiver',
      ],
      rows,
    ),
    '',
    '**Verdicts** (targets from the issue; medians over runs):',
    '',
    ...verdicts,
    '',
    `Path: ${String(setup['namespaces'])}, ${String(setup['device'])}, linkem from \`${LINKEM_DIR}\` (source sha256 ${String(setup['linkemSourceSha256'])}); impairments (\`netns-up.sh\` arguments, \`--seed\` = run number): ` +
      p.cases.map((c) => `${c} \`${String((setup['impairments'] as Record<string, string>)[c])}\``).join(', ') +
      `. ${bulkNote}Node ${machine.node}; rx-rudp at its defaults (${DEFAULTS.maxDatagramSize} B datagrams, receive window ${DEFAULTS.receiveWindow} packets), channels negotiated on both ends.`,
    '',
    `One-way latency = arrival at the receiver's process − the CLOCK_MONOTONIC stamp (process.hrtime.bigint()) the sender's process wrote into the message as it sent it; both read the same kernel clock. ` +
      `Latency is of the first stream (channel 2 in isolation, the position or control channel otherwise); medians are over runs, and each reliable run must deliver every message once and in order or it fails. ` +
      `isolation "one" puts both streams on channel 1, so a loss of either holds back both. "delivered" with a ttl counts what arrived; "expired" counts send() calls that ended with MessageExpiredError (a message can arrive and still expire, when its acknowledgement is lost). ` +
      `The probe: ${PROBE_SIZE} B raw UDP every ${PROBE_PERIOD_MS} ms from the sender's process to the receiver's (${PROBE_IP_BYTES} B as IP), stamped and timed like the messages; it crosses the same link and queue but no transport. ` +
      `"datagrams sent" are each end's own count (rx-rudp packetsSent: data, acknowledgements, pings); "link B→A" is what linkem counted in the data direction over the slot (probes included; in the isolation and position cases for all the variants that ran side by side): its lost share and the bottleneck queue's drops. ` +
      `"sender srtt / in flight" are medians of the sender's connection stats sampled every 250 ms while the streams ran. Event-loop delay: perf_hooks monitorEventLoopDelay (${LOOP_RESOLUTION_MS} ms resolution) in each process while the streams ran. ` +
      `${p.serial ? 'Every variant ran alone.' : 'The variants of the isolation and position cases ran side by side over the same link (a process pair each), so they meet the same moment of the machine; the bulk variants one after the other.'} ` +
      `The whole run took ${fmt(elapsed, 0)} s.`,
  ];
  return {
    name: 'channels',
    title: 'Channels',
    markdown: markdown.join('\n'),
    data: { mode: 'kernel path (linkem)', setup, plan: p, verdicts, outcomes },
    seconds: 0,
  };
}

// ---- in process, over the VirtualNetwork (the fallback without the emulator) ----------------------

const A = '10.0.0.1';
const B = '10.0.0.2';
const PORT = 7000;

const lossSpec = (percent: number): LossSpec => ({ drop: percent, block: 100 });

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
  const variant = variantOf(flags);
  const seed = flagNumber(flags, 'seed', 1);
  const scheduler = realTimeScheduler;
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loopDelay.enable();
  const cpu0 = process.cpuUsage();
  const network = new VirtualNetwork({ scheduler, seed });
  const model = new LinkModel({ scheduler, seed, delay: DELAY_MS, jitter: 0, loss: lossSpec(variant.loss) });
  network.setLink(A, B, { delay: DELAY_MS, drop: model.drop });
  network.setLink(B, A, { delay: DELAY_MS, drop: model.drop });

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

  // B: every message carries [sent at: f64][stream: u8][seq: u32 LE] (sendStreams); bulk messages are counted only.
  listen({ host: B, port: PORT, scheduler, channels: true, socketFactory: model.wrap(B, network.socketFactory(B)) }).subscribe((conn) => {
    for (const id of channelIds) {
      conn.channel(id).messages$.subscribe((m) => {
        const view = new DataView(m.buffer, m.byteOffset, m.byteLength);
        const stream = view.getUint8(8);
        const seq = view.getUint32(9, true);
        if (stream === 0) latencies.push(performance.now() - view.getFloat64(0));
        if (reliable ? seq !== next[stream] : seq < next[stream]!) inOrder = false;
        next[stream] = seq + 1;
        if (++arrived === total && reliable) allDelivered();
      });
    }
    if (variant.bulk !== undefined) {
      conn.channel(BULK_CHANNEL).messages$.subscribe((m) => {
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
  const bulk = startBulk(aConn, variant.bulk);
  const sending = { sent: 0, expired: 0 };
  await sendStreams(channels, streams, seconds, (message) => message.writeDoubleBE(performance.now(), 0), sending);
  bulk.stop();
  // A ttl stream never completes for sure (abandoned messages): wait out the ttl, plus the path.
  const drain = reliable ? DRAIN_MS : 2 * Math.max(...streams.map((s) => s.ttl ?? 0)) + 4 * DELAY_MS;
  await Promise.race([delivered, new Promise((resolve) => setTimeout(resolve, drain))]);
  const report: ScenarioReport = {
    sent: counts[0]!,
    delivered: latencies.length,
    inOrder,
    latency: summarize(latencies),
    expired: sending.expired,
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

async function runVirtual(flags: Flags, why: string): Promise<BenchResult> {
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
      return ms(error);
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
      const m = (f: (o: ScenarioReport) => number, digits = 1): string => (good.length === 0 ? 'n/a' : fmt(median(good.map(f)), digits));
      const loss = lossLabel(lossSpec(CASES[name]![variant]!.loss));
      return [
        `${name}: ${variant} (${loss})`,
        `${good.length}/${list.length}${failed.length > 0 ? ` (FAILED: ${failed[0]})` : ''}`,
        good.map((o) => `${o.delivered}/${o.sent}${o.inOrder ? '' : ' OUT OF ORDER'}`).join(', '),
        m((o) => o.latency.mean),
        m((o) => o.latency.p50),
        m((o) => o.latency.p90),
        m((o) => o.latency.p99),
        good.map((o) => fmt(o.latency.p99)).join(', '),
        m((o) => o.latency.max),
        m((o) => o.expired, 0),
        m((o) => o.retransmissions, 0),
        good.some((o) => o.bulkMiBps !== undefined) ? m((o) => o.bulkMiBps ?? NaN) : '',
        good.length === 0 ? 'n/a' : `${fmt(median(good.map((o) => o.lateness?.p99 ?? NaN)))} / ${fmt(median(good.map((o) => o.eventLoop.p99)))}`,
        m((o) => o.cpuSeconds, 2),
      ];
    }),
  );
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
    `- Bulk (in one process: not the transport's figure): the control channel's p99 is ${fmt(withBulk)} ms with the bulk transfer vs ${fmt(control)} ms alone (${signed(withBulk - control)} ms; target ≤ +5 ms: ${withBulk - control <= 5 ? 'met' : 'MISSED'}); paced at 8 MiB/s: ${fmt(paced)} ms (${signed(paced - control)} ms).`,
  ];
  const markdown = [
    `### Channels, in-process fallback (VirtualNetwork, both ends in one process): real time, one-way delay ${DELAY_MS} ms, ${seconds} s per variant, ${runs} run${runs === 1 ? '' : 's'}`,
    '',
    `**Not over the kernel path**: ${why}. Both ends share one event loop here, so the bulk case measures the CPU they share (see the timer lateness) as much as the transport.`,
    '',
    table(
      ['case: variant (loss each way)', 'runs ok', 'delivered per run', 'one-way mean ms (median)', 'p50 ms', 'p90 ms', 'p99 ms (median)', 'p99 per run', 'max ms (median)', 'expired', 'retx by A', 'bulk MiB/s', 'timer lateness / event-loop delay p99 ms', 'CPU s'],
      rows,
    ),
    '',
    ...verdicts,
    '',
    'Latency is of the first stream (channel 2 in isolation, the position or control channel otherwise); medians are over runs. ' +
      'isolation "one" puts both streams on channel 1, so a loss of either holds back both. Loss here is exact (k of every 100 datagrams each way). ' +
      'The network has no bandwidth limit, so the bulk case measures the sender\'s scheduling and the CPU both ends share in one process. ' +
      (serial ? 'Variants ran one after the other.' : 'Variants of the isolation and position cases ran in parallel, one process each; bulk variants one after the other.'),
  ].join('\n');
  return { name: 'channels', title: 'Channels', markdown, data: { mode: 'in-process VirtualNetwork (fallback)', why, seconds, runs, outcomes }, seconds: 0 };
}

// ---- entry ----------------------------------------------------------------------------------------------

function whyVirtual(flags: Flags): string | undefined {
  if (flagBool(flags, 'virtual')) return 'asked for with --virtual';
  const unavailable = linkemUnavailable();
  return unavailable === undefined ? undefined : `the link emulator is unavailable (${unavailable})`;
}

async function run(flags: Flags): Promise<BenchResult> {
  const why = whyVirtual(flags);
  return why === undefined ? runPath(flags) : runVirtual(flags, why);
}

benchMain((flags) => {
  if (whyVirtual(flags) === undefined) return pathLimitMs(pathPlan(flags));
  const seconds = flagNumber(flags, 'seconds', flags.has('quick') ? 8 : 15);
  const runs = flagNumber(flags, 'runs', flags.has('quick') ? 1 : 3);
  return runs * (seconds * 1000 + DRAIN_MS + 10_000) * 8 + 60_000;
}, run, { scenario });
