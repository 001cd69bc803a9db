/**
 * The congestion controller end to end, in virtual time over the testing kit's network: what bulk
 * transfers achieve under random loss, on a bottleneck, and beside each other. Virtual time makes
 * these figures exact and repeatable: they are properties of the protocol, not timings of this
 * machine (the real-path figures are in the benchmark).
 */
import { VirtualAction, VirtualTimeScheduler, interval, mergeMap, range, takeWhile } from 'rxjs';
import type { Connection } from '../../lib/core/connection';
import { connect, listen } from '../../lib/testing/endpoints';
import { VirtualNetwork, type LinkImpairment, type TrafficCounters } from '../../lib/testing/virtual-network';

const MIB = 1024 * 1024;
const SERVER = '10.0.0.2';

interface Flow {
  readonly from: string;
  readonly port: number;
  readonly mib: number;
  /** Virtual ms at which the flow starts sending. */
  readonly startAt?: number;
}

interface FlowResult {
  /** Bytes received by virtual time t (sampled every 10 ms). */
  readonly received: Map<number, number>;
  doneAt: number;
}

/** Runs bulk transfers (1 MiB messages, 8 in flight each) over one network until all are received, or `limit` virtual ms. */
function run(impairment: LinkImpairment, flows: readonly Flow[], seed = 1, limit = 60_000) {
  const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
  const network = new VirtualNetwork({ scheduler, seed, default: impairment });
  /** The network's counters each second. */
  const counters: TrafficCounters[] = [];
  const snapshot = (): void => {
    counters.push(network.stats().total);
    if (results.some((r) => r.doneAt < 0)) scheduler.schedule(snapshot, 1000);
  };
  scheduler.schedule(snapshot, 0);
  const results = flows.map((flow): FlowResult => {
    const result: FlowResult = { received: new Map(), doneAt: -1 };
    let received = 0;
    listen(network, { host: SERVER, port: flow.port }).subscribe((conn: Connection) => {
      conn.messages$.subscribe((m) => {
        received += m.length;
        if (received === flow.mib * MIB) result.doneAt = scheduler.now();
      });
    });
    const sample = (): void => {
      result.received.set(Math.round(scheduler.now()), received);
      if (result.doneAt < 0) scheduler.schedule(sample, 10);
    };
    scheduler.schedule(sample, 0);
    scheduler.schedule(() => {
      connect(network, { from: flow.from, host: SERVER, port: flow.port }).subscribe((conn) => {
        const block = new Uint8Array(MIB).fill(7);
        range(0, flow.mib).pipe(mergeMap(() => conn.send(block), 8)).subscribe();
      });
    }, flow.startAt ?? 0);
    return result;
  });
  scheduler.maxFrames = limit;
  scheduler.flush();
  return { results, network, counters };
}

const megabytesPerSecond = (bytes: number, ms: number): number => bytes / 1e6 / (ms / 1000);

describe('congestion control, end to end in virtual time', () => {
  // A controller that halves its window on every loss is capped near MSS / RTT × 1.22 / √p
  // (Mathis et al.): 1200 B / 20 ms × 1.22 / √0.02 ≈ 0.52 MB/s, and less at 5 %.
  test.each([
    [0.02, 12],
    [0.05, 8],
  ])('random loss of %p each way is not congestion: 16 MiB over a 20 ms round trip at ≥ %p MB/s', (loss, atLeast) => {
    for (const seed of [1, 2, 3]) {
      const { results } = run({ loss, delay: 10 }, [{ from: '10.0.0.1', port: 9000, mib: 16 }], seed);
      const { doneAt } = results[0]!;
      expect(doneAt).toBeGreaterThan(0);
      expect(megabytesPerSecond(16 * MIB, doneAt)).toBeGreaterThanOrEqual(atLeast);
    }
  });

  // Startup doubles the rate each round until the bandwidth stops growing, so it overshoots a
  // shallow queue once (as BBR does); after that, pacing at the estimate keeps the queue short.
  test('on a 10 MB/s bottleneck with a 100 kB queue: ≥ 85 % of its rate; past startup the queue (half the BDP) overflows for < 0.5 % of the datagrams (the probes for more bandwidth)', () => {
    const { results, network, counters } = run({ delay: 10, rate: 10e6, queue: 100_000 }, [{ from: '10.0.0.1', port: 9000, mib: 32 }]);
    const { doneAt } = results[0]!;
    expect(megabytesPerSecond(32 * MIB, doneAt)).toBeGreaterThanOrEqual(8.5);
    const afterStartup = counters[2]!; // startup and drain are over within 2 s
    const end = network.stats().total;
    expect(end.dropped / end.sent).toBeLessThan(0.1);
    expect((end.dropped - afterStartup.dropped) / (end.sent - afterStartup.sent)).toBeLessThan(0.005);
  });

  test('two transfers sharing a bottleneck, the second joining 2 s later, each get 35–65 % of it while both run', () => {
    const { results } = run({ delay: 10, rate: 10e6, queue: 100_000 }, [
      { from: '10.0.0.1', port: 9000, mib: 48 },
      { from: '10.0.0.3', port: 9001, mib: 16, startAt: 2000 },
    ]);
    const [first, second] = results as [FlowResult, FlowResult];
    expect(second.doneAt).toBeGreaterThan(0);
    // Shares over the time both were sending, past the newcomer's first second.
    const from = 3000;
    const to = Math.floor(second.doneAt / 10) * 10 - 10;
    const share = (r: FlowResult): number => r.received.get(to)! - r.received.get(from)!;
    const total = share(first) + share(second);
    expect(share(second) / total).toBeGreaterThanOrEqual(0.35);
    expect(share(second) / total).toBeLessThanOrEqual(0.65);
    expect(megabytesPerSecond(total, to - from)).toBeGreaterThanOrEqual(8.5);
  });

  // The probes for more bandwidth queue a quarter of the BDP; probing every few round trips would
  // keep that queue standing, and every message beside the bulk waits in it.
  test('a control channel beside a bulk one on a 12.5 MB/s bottleneck: p99 one-way ≤ 15 ms (the link\'s 10 ms + 5), the bulk ≥ 92 % of the link', () => {
    const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
    const network = new VirtualNetwork({ scheduler, seed: 1, default: { delay: 10, rate: 12.5e6, queue: 200_000 } });
    const latencies: number[] = [];
    const bulkAt = new Map<number, number>();
    let bulk = 0;
    listen(network, { host: SERVER, port: 9000, channels: true }).subscribe((conn) => {
      conn.channel(1).messages$.subscribe((m) => latencies.push(scheduler.now() - Buffer.from(m).readDoubleBE(0)));
      conn.channel(2, { priority: -1 }).messages$.subscribe((m) => (bulk += m.length));
    });
    const sampleBulk = (): void => {
      bulkAt.set(Math.round(scheduler.now()), bulk);
      if (scheduler.now() < 12_000) scheduler.schedule(sampleBulk, 1000);
    };
    scheduler.schedule(sampleBulk, 0);
    connect(network, { from: '10.0.0.1', host: SERVER, port: 9000, channels: true }).subscribe((conn) => {
      const control = conn.channel(1);
      const assets = conn.channel(2, { priority: -1 });
      const block = new Uint8Array(64 * 1024).fill(7);
      range(0, 4000).pipe(mergeMap(() => assets.send(block), 16)).subscribe();
      interval(10, scheduler)
        .pipe(takeWhile(() => scheduler.now() < 12_000))
        .subscribe(() => {
          if (scheduler.now() < 3000) return; // past startup
          const message = Buffer.alloc(1024);
          message.writeDoubleBE(scheduler.now(), 0);
          control.send$.next(message);
        });
    });
    scheduler.maxFrames = 12_500;
    scheduler.flush();
    latencies.sort((a, b) => a - b);
    expect(latencies.length).toBeGreaterThan(850);
    const p99 = latencies[Math.floor(latencies.length * 0.99)]!;
    expect(p99).toBeLessThanOrEqual(15);
    expect(megabytesPerSecond(bulkAt.get(12_000)! - bulkAt.get(3000)!, 9000)).toBeGreaterThanOrEqual(0.92 * 12.5);
  });
});
