/**
 * KCP's test scenario (kcp/test.cpp, "fast mode"), in real time over the VirtualNetwork: one-way
 * delay 30..62 ms (30 + uniform 0..32, FIFO per direction), exact loss per direction (k of every
 * block, without replacement). Side A sends an 8-byte message every 20 ms, B echoes it, A records
 * each round trip. Each loss rate runs in its own process (in parallel unless --serial).
 *
 *   node bench/dist/bench/kcp.js [--quick] [--echoes 1001] [--serial] [--all-scenarios | --no-extra]
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { switchMap, tap } from 'rxjs';
import { connect, generateKeyPair, listen, realTimeScheduler, type Connection } from '../lib/index';
import { VirtualNetwork } from '../lib/testing/index';
import { benchMain, cpuSeconds, loopDelaySummary, LOOP_RESOLUTION_MS, flagBool, flagNumber, flagString, table, type BenchResult, type Flags } from './lib/common';
import { LinkModel, lossLabel, type LossSpec } from './lib/link';
import { Child, childGuard, emit, type Message } from './lib/proc';
import { fmt, summarize, type Summary } from './lib/stats';

const A = '10.0.0.1';
const B = '10.0.0.2';
const PORT = 7000;
const DELAY = 30;
const JITTER = 32;
const PERIOD = 20;
const TARGETS = { avg: 120, p99: 240, max: 300 };

interface Scenario {
  readonly name: string;
  readonly label: string;
  readonly loss: LossSpec;
  /** 'fifo' = jitter in the bench's FIFO wrapper; 'kit-fifo' = the kit's `fifo: true`; 'kit' = the kit's own jitter (reorders). */
  readonly jitter: 'fifo' | 'kit-fifo' | 'kit';
  readonly redundancyOff?: boolean;
  /** Both peers with the secure extension (every packet sealed). */
  readonly secure?: boolean;
  /** Only in full runs (or with --all-scenarios). */
  readonly extra?: boolean;
}

const SCENARIOS: readonly Scenario[] = [
  { name: 'rt2', label: '2 % round trip (1/100 each way)', loss: { drop: 1, block: 100 }, jitter: 'fifo' },
  { name: 'kcp', label: '5 % each way (5/100), KCP test', loss: { drop: 5, block: 100 }, jitter: 'fifo' },
  { name: 'rt20', label: '20 % round trip (53/500 = 10.6 % each way)', loss: { drop: 53, block: 500 }, jitter: 'fifo' },
  { name: 'kcp-noredundancy', label: '5 % each way, `redundancy: off`', loss: { drop: 5, block: 100 }, jitter: 'fifo', redundancyOff: true },
  { name: 'kcp-secure', label: '5 % each way, secure (every packet sealed)', loss: { drop: 5, block: 100 }, jitter: 'fifo', secure: true },
  { name: 'kcp-kitfifo', label: "5 % each way, kit's own `fifo: true` jitter", loss: { drop: 5, block: 100 }, jitter: 'kit-fifo', extra: true },
  { name: 'kcp-kit', label: "5 % each way, kit's plain jitter: REORDERS (not FIFO)", loss: { drop: 5, block: 100 }, jitter: 'kit', extra: true },
];

interface ScenarioReport {
  readonly name: string;
  readonly echoes: number;
  readonly received: number;
  readonly rtt: Summary;
  readonly aPacketsSent: number;
  readonly aRetransmissions: number;
  readonly aRepeatsSent: number;
  readonly bPacketsSent: number;
  readonly bRetransmissions: number;
  readonly wire: { aToB: { sent: number; dropped: number }; bToA: { sent: number; dropped: number } };
  readonly oneWay: Summary | undefined;
  readonly lateness: Summary | undefined;
  /** This process's event-loop delay (ms: p50, p99, max) and CPU seconds over the scenario. */
  readonly eventLoop: { p50: number; p99: number; max: number };
  readonly cpuSeconds: number;
  readonly sendLateness: Summary;
  readonly seconds: number;
  /** A's window figures once a second: t s, cwnd, in flight, buffered bytes, srtt, rto. */
  readonly trace: readonly (readonly number[])[];
}

async function scenario(flags: Flags): Promise<void> {
  const echoes = flagNumber(flags, 'echoes', 1001);
  childGuard(echoes * PERIOD + 60_000);
  const name = flagString(flags, 'scenario') ?? 'kcp';
  const sc = SCENARIOS.find((s) => s.name === name);
  if (sc === undefined) throw new Error(`unknown scenario ${name}`);
  const seed = flagNumber(flags, 'seed', 1);
  const scheduler = realTimeScheduler;
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS });
  loopDelay.enable();
  const cpu0 = process.cpuUsage();
  const network = new VirtualNetwork({ scheduler, seed });
  const model = new LinkModel({ scheduler, seed, delay: DELAY, jitter: sc.jitter === 'fifo' ? JITTER : 0, loss: sc.loss });
  const impairment = {
    delay: DELAY,
    drop: model.drop,
    ...(sc.jitter === 'fifo' ? {} : { jitter: JITTER }),
    ...(sc.jitter === 'kit-fifo' ? { fifo: true } : {}),
  };
  const protocol = sc.redundancyOff ? { redundancy: 'off' as const } : {};
  const keys = generateKeyPair();
  const listenSecure = sc.secure === true ? { secure: { privateKey: keys.privateKey } } : {};
  const connectSecure = sc.secure === true ? { secure: { serverPublicKey: keys.publicKey } } : {};
  network.setLink(A, B, impairment);
  network.setLink(B, A, impairment);
  const factory = (host: string) => (sc.jitter === 'fifo' ? model.wrap(host, network.socketFactory(host)) : network.socketFactory(host));

  let bConn: Connection | undefined;
  listen({ host: B, port: PORT, scheduler, socketFactory: factory(B), ...protocol, ...listenSecure }).subscribe((conn) => {
    bConn = conn;
    conn.messages$.subscribe((m) => conn.send$.next(m));
  });

  const sentAt: number[] = [];
  const rtts: number[] = [];
  const sendLate: number[] = [];
  const trace: number[][] = [];
  let received = 0;
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    connect({ host: B, port: PORT, scheduler, socketFactory: factory(A), ...protocol, ...connectSecure })
      .pipe(
        switchMap((conn) => {
          const t0 = performance.now();
          const sampler = setInterval(() => {
            const st = conn.stats;
            trace.push([Math.round((performance.now() - t0) / 100) / 10, st.congestionWindow, st.inFlight, st.bufferedBytes, Math.round(st.rtt ?? NaN), Math.round(st.rto)]);
          }, 1000);
          sampler.unref();
          let i = 0;
          const tick = (): void => {
            const now = performance.now();
            sendLate.push(now - (t0 + i * PERIOD));
            const message = new Uint8Array(8);
            new DataView(message.buffer).setUint32(0, i);
            sentAt[i] = now;
            conn.send$.next(message);
            i++;
            if (i < echoes) setTimeout(tick, Math.max(0, t0 + i * PERIOD - performance.now()));
          };
          tick();
          return conn.messages$.pipe(
            tap((m) => {
              const seq = new DataView(m.buffer, m.byteOffset, m.byteLength).getUint32(0);
              rtts.push(performance.now() - sentAt[seq]!);
              if (++received === echoes) {
                const a = conn.stats;
                const b = bConn?.stats;
                const links = network.stats().links;
                const link = (from: string, to: string) => {
                  const l = links.find((x) => x.from === from && x.to === to);
                  return { sent: l?.sent ?? 0, dropped: l?.dropped ?? 0 };
                };
                const report: ScenarioReport = {
                  name,
                  echoes,
                  received,
                  rtt: summarize(rtts),
                  aPacketsSent: a.packetsSent,
                  aRetransmissions: a.retransmissions,
                  aRepeatsSent: a.repeatsSent,
                  bPacketsSent: b?.packetsSent ?? NaN,
                  bRetransmissions: b?.retransmissions ?? NaN,
                  wire: { aToB: link(A, B), bToA: link(B, A) },
                  oneWay: model.oneWay.length > 0 ? summarize(model.oneWay) : undefined,
                  lateness: model.lateness.length > 0 ? summarize(model.lateness) : undefined,
                  eventLoop: loopDelaySummary(loopDelay),
                  cpuSeconds: cpuSeconds(cpu0).total,
                  sendLateness: summarize(sendLate),
                  seconds: (performance.now() - started) / 1000,
                  trace,
                };
                emit({ type: 'report', report });
                resolve();
              }
            }),
          );
        }),
      )
      .subscribe({ error: (e: Error) => reject(e) });
  });
  process.exit(0);
}

async function run(flags: Flags): Promise<BenchResult> {
  const quick = flags.has('quick');
  const echoes = flagNumber(flags, 'echoes', quick ? 201 : 1001);
  const serial = flagBool(flags, 'serial');
  const all = quick ? flagBool(flags, 'all-scenarios') : !flagBool(flags, 'no-extra');
  const chosen = SCENARIOS.filter((s) => !s.extra || all);
  const limit = echoes * PERIOD + 60_000;
  const runScenario = async (s: Scenario): Promise<ScenarioReport | string> => {
    const child = new Child(`kcp:${s.name}`, __filename, ['--role', 'scenario', '--scenario', s.name, '--echoes', String(echoes)], { timeoutMs: limit + 5000 });
    try {
      const m = await child.next<Message & { report: ScenarioReport }>('report', limit);
      return m.report;
    } catch (error) {
      return error instanceof Error ? error.message.split('\n')[0]! : String(error);
    } finally {
      await child.stop(1000);
    }
  };
  const results: (ScenarioReport | string)[] = [];
  if (serial) for (const s of chosen) results.push(await runScenario(s));
  else results.push(...(await Promise.all(chosen.map(runScenario))));

  const mark = (value: number, target: number): string => `${fmt(value)} ${value <= target ? '✓' : '✗'}`;
  const rows = chosen.map((s, i) => {
    const r = results[i]!;
    if (typeof r === 'string') return [s.label, `FAILED: ${r}`, '', '', '', '', '', '', '', ''];
    return [
      s.label,
      `${r.received}/${r.echoes}`,
      mark(r.rtt.mean, TARGETS.avg),
      fmt(r.rtt.p50),
      mark(r.rtt.p99, TARGETS.p99),
      mark(r.rtt.max, TARGETS.max),
      `${r.aPacketsSent} (${r.aRetransmissions} retx)`,
      r.lateness ? `${fmt(r.lateness.p50)} / ${fmt(r.lateness.p99)} / ${fmt(r.lateness.max)}` : 'n/a',
      `${fmt(r.eventLoop.p99)} / ${fmt(r.eventLoop.max)}`,
      fmt(r.cpuSeconds, 2),
    ];
  });
  const markdown = [
    `### KCP scenario: real time, one-way delay ${DELAY}..${DELAY + JITTER} ms, exact loss per direction, 8 B every ${PERIOD} ms, ${echoes} echoes`,
    '',
    table(['loss', 'echoes', `avg RTT ms (≤ ${TARGETS.avg})`, 'p50 ms', `p99 ms (≤ ${TARGETS.p99})`, `max ms (≤ ${TARGETS.max})`, 'datagrams sent by A', 'timer lateness p50/p99/max ms', 'event-loop delay p99/max ms', 'CPU s'], rows),
    '',
    `Targets: avg ≤ ${TARGETS.avg}, p99 ≤ ${TARGETS.p99}, max ≤ ${TARGETS.max} ms. References at 5 % each way (KCP test): KCP fast mode avg 139 / max 387 ms; Linux TCP avg 140 / p99 343 / max 402 ms. ` +
      `Minimum possible RTT is ${2 * DELAY} ms, mean without loss ≈ ${2 * (DELAY + JITTER / 2)} ms plus FIFO queueing. ` +
      `The kit's plain jitter is drawn independently per datagram, which reorders; the main rows apply the jitter in a bench socket wrapper (hand-off at max(previous, now + U{0..${JITTER}}) per direction, constant ${DELAY} ms in the kit, so real-time timers cannot reorder). ` +
      `Each copy of a datagram is an independent draw of the loss pattern (as in KCP's harness), so redundancy's back-to-back copies are lost together only by chance; bursty real loss would do worse. ` +
      `"Datagrams sent by A" = A's connection stats.packetsSent (DATA, acks, REPEATs, pings; CONNECT not included). Timer lateness = how much later than due the real-time timers delivered datagrams (inflates every RTT); event-loop delay = perf_hooks.monitorEventLoopDelay of the scenario's process; CPU = its process.cpuUsage(). ` +
      (serial ? 'Scenarios ran one after the other.' : 'Scenarios ran in parallel, one process each (each needs ~1 % of a core).'),
  ].join('\n');
  return { name: 'kcp', title: 'KCP scenario', markdown, data: { echoes, targets: TARGETS, scenarios: chosen, results }, seconds: 0 };
}

benchMain((flags) => (flagNumber(flags, 'echoes', flags.has('quick') ? 201 : 1001) * PERIOD * 4 + 120_000), run, { scenario });
