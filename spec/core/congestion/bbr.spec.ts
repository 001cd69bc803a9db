/**
 * The model-based controller, driven with hand-made acknowledgements: one ack per round trip of
 * a path whose bandwidth and RTT the test chooses. What it must do: keep the window at twice the
 * bandwidth-delay product whatever random loss there is (where NewReno halves it), cap what is in
 * flight when a round loses more than CONGESTION_LOSS_RATE, leave startup when the bandwidth
 * stops growing, never read a quiet application as a slow path, refresh its minimum RTT, and
 * collapse on a persistent timeout.
 */
import { ACK_DELAY_MS, Bbr, CONGESTION_LOSS_RATE } from '../../../lib/core/congestion/bbr';
import type { AckSample, CongestionController } from '../../../lib/core/congestion/controller';
import { NewReno } from '../../../lib/core/congestion/new-reno';

const MSS = 1200;
const RTT = 20;

interface Path {
  now: number;
  delivered: number;
}

interface Round {
  /** Delivery rate measured this round, bytes per ms. */
  readonly rate: number;
  readonly rtt?: number;
  /** Bytes lost in this round (reported before its ack). */
  readonly lost?: number;
  readonly appLimited?: boolean;
}

/** One round trip: the losses of the round, then one ack that ends it, acknowledging a round's worth at `rate` (what is left in flight is bounded by the window). */
function round(cc: CongestionController, path: Path, r: Round): void {
  const rtt = r.rtt ?? RTT;
  const acked = Math.round(r.rate * rtt);
  if (r.lost) cc.onLoss(path.now, path.now + rtt / 2, r.lost);
  const prior = path.delivered;
  path.delivered += acked;
  path.now += rtt;
  const sample: AckSample = { ackedBytes: acked, inFlight: Math.min(acked, cc.window), rtt, deliveryRate: r.rate, interval: rtt, appLimited: r.appLimited ?? false, delivered: path.delivered, priorDelivered: prior };
  cc.onAcked(sample, path.now);
}

function rounds(cc: CongestionController, path: Path, n: number, r: Round): void {
  for (let i = 0; i < n; i++) round(cc, path, r);
}

/**
 * One round trip acknowledged in `acks` acks (each with an RTT sample), as a path with many
 * packets in flight shows it. The first ack starts the round: it releases a packet sent when the
 * previous round's first ack arrived.
 */
function ackedRound(cc: Bbr, path: Path & { roundMark?: number }, r: Round, acks = 10): void {
  const rtt = r.rtt ?? RTT;
  const bytes = Math.round((r.rate * rtt) / acks);
  for (let i = 0; i < acks; i++) {
    const prior = i === 0 ? (path.roundMark ?? 0) : (path.roundMark ?? 1) - 1;
    path.delivered += bytes;
    path.now += rtt / acks;
    if (i === 0) path.roundMark = path.delivered;
    cc.onAcked({ ackedBytes: bytes, inFlight: Math.min(Math.round(r.rate * rtt), cc.window), rtt, deliveryRate: r.rate, interval: rtt, appLimited: false, delivered: path.delivered, priorDelivered: prior }, path.now);
  }
}

const fresh = (): { cc: Bbr; path: Path } => ({ cc: new Bbr(MSS, 65535 * MSS), path: { now: 0, delivered: 0 } });

describe('Bbr', () => {
  test('random loss below the threshold leaves the window at twice the BDP; NewReno halves it', () => {
    const rate = 20_000; // 20 MB/s: BDP 400 kB, and 5 % of a round is 16 packets
    const { cc, path } = fresh();
    rounds(cc, path, 60, { rate });
    const clean = cc.window;
    expect(clean).toBeGreaterThanOrEqual(2 * rate * RTT);
    rounds(cc, path, 60, { rate, lost: 0.05 * rate * RTT });
    expect(cc.window).toBeGreaterThanOrEqual(clean * 0.95);
    expect(cc.pacingRate).toBeGreaterThanOrEqual(0.75 * rate);

    const reno = new NewReno(MSS, 65535 * MSS);
    const renoPath = { now: 0, delivered: 0 };
    rounds(reno, renoPath, 60, { rate });
    rounds(reno, renoPath, 60, { rate, lost: 0.05 * rate * RTT });
    expect(reno.window).toBeLessThan(clean / 2);
  });

  test(`a round losing more than ${CONGESTION_LOSS_RATE * 100} % caps what is in flight at 0.7 of the window, and the cap grows back after clean rounds`, () => {
    const rate = 5000; // 100 kB per round: 30 % is 25 packets
    const { cc, path } = fresh();
    rounds(cc, path, 60, { rate });
    const before = cc.window;
    round(cc, path, { rate, lost: 0.3 * rate * RTT }); // judged at the ack that ends the round
    expect(cc.window).toBeLessThanOrEqual(Math.ceil(0.7 * before));
    rounds(cc, path, 10, { rate });
    expect(cc.window).toBeGreaterThanOrEqual(before * 0.95);
  });

  test('fewer than 8 lost packets in a round are never congestion, whatever the fraction', () => {
    const rate = 100; // 2 kB per round: 7 packets lost is 4 × the round
    const { cc, path } = fresh();
    rounds(cc, path, 40, { rate });
    const before = cc.window;
    rounds(cc, path, 10, { rate, lost: 7 * MSS });
    expect(cc.window).toBe(before);
  });

  test('startup grows ~2.9× per round, ends when the bandwidth grew < 25 % for three rounds, then paces at the bandwidth', () => {
    const { cc, path } = fresh();
    for (let rate = 10; rate <= 5120; rate *= 2) round(cc, path, { rate });
    expect(cc.estimate.state).toBe('startup');
    expect(cc.pacingRate).toBeCloseTo((2 / Math.LN2) * 5120, 0);
    rounds(cc, path, 3, { rate: 5120 });
    expect(cc.estimate.state).not.toBe('startup');
    rounds(cc, path, 16, { rate: 5120 });
    expect(cc.estimate.state).toBe('probe-bandwidth');
    expect(cc.pacingRate).toBe(5120);
    expect(cc.window).toBeGreaterThanOrEqual(2 * 5120 * RTT);
  });

  /** The pacing gain of each of `n` rounds, as runs of equal gain: [gain, rounds][]. */
  function gainRuns(cc: Bbr, path: Path, n: number, r: Round, bandwidth: number): [number, number][] {
    const runs: [number, number][] = [];
    for (let i = 0; i < n; i++) {
      round(cc, path, r);
      const gain = Math.round((cc.pacingRate / bandwidth) * 100) / 100;
      const last = runs[runs.length - 1];
      if (last?.[0] === gain) last[1]++;
      else runs.push([gain, 1]);
    }
    return runs;
  }

  test('probes for bandwidth rarely: 1.25 for a round, 0.75 until drained, then 1 for as many rounds as the pipe holds packets (at most 63) or 2-3 s', () => {
    const { cc, path } = fresh();
    rounds(cc, path, 40, { rate: 5120 }); // 102 kB in the pipe: 85 packets
    const runs = gainRuns(cc, path, 400, { rate: 5120 }, 5120).slice(1, -1); // whole runs only
    expect(new Set(runs.map(([gain]) => gain))).toEqual(new Set([0.75, 1, 1.25]));
    for (const [gain, length] of runs) {
      if (gain === 1.25) expect(length).toBe(1);
      if (gain === 0.75) expect(length).toBe(1); // the acks show the pipe drained at once
      if (gain === 1) expect(length).toBe(63);
    }
    // A short pipe probes sooner: 5 packets, 5 rounds of cruise.
    const short = fresh();
    rounds(short.cc, short.path, 40, { rate: 300 });
    const shortRuns = gainRuns(short.cc, short.path, 100, { rate: 300 }, 300).slice(1, -1);
    expect(shortRuns.filter(([gain]) => gain === 1).map(([, length]) => length)).toContain(5);
    expect(Math.max(...shortRuns.filter(([gain]) => gain === 1).map(([, length]) => length))).toBe(5);
    // A long round trip probes after 2-3 s: at 100 ms, 20-30 rounds rather than 63.
    const long = fresh();
    rounds(long.cc, long.path, 40, { rate: 5120, rtt: 100 });
    const longCruises = gainRuns(long.cc, long.path, 200, { rate: 5120, rtt: 100 }, 5120).slice(1, -1).filter(([gain]) => gain === 1);
    expect(longCruises.length).toBeGreaterThan(2);
    for (const [, length] of longCruises) {
      expect(length).toBeGreaterThanOrEqual(20);
      expect(length).toBeLessThanOrEqual(30);
    }
    expect(new Set(longCruises.map(([, length]) => length)).size).toBeGreaterThan(1); // spread, not in step
  });

  test('cruising, it probes at once when the path delivers 10 % more than the estimate it cruises at: the pipe has room', () => {
    const { cc, path } = fresh();
    rounds(cc, path, 40, { rate: 5120 }); // confirmed: 85 packets in the pipe, cruises of 63 rounds
    const gain = (): number => Math.round((cc.pacingRate / cc.estimate.bandwidth) * 100) / 100;
    let n = 0;
    while (gain() !== 1 && n++ < 100) round(cc, path, { rate: 5120 });
    rounds(cc, path, 3, { rate: 5120 });
    expect(gain()).toBe(1);
    let rate = 5120;
    for (n = 0; n < 20 && gain() === 1; n++) round(cc, path, { rate: (rate *= 1.02) });
    expect(gain()).toBe(1.25);
    expect(n).toBeLessThanOrEqual(6); // 1.02^5 ≈ 1.104
  });

  test('after probing up it paces at 0.75 until in flight falls to the pipe, and for one round at most (what 1.25 for a round queued)', () => {
    const { cc, path } = fresh();
    rounds(cc, path, 40, { rate: 5120 });
    // A queue keeps 1.5 × the pipe in flight: it never drains, so each 0.75 phase ends by its round limit.
    const runs = gainRuns(cc, path, 400, { rate: 5120, rtt: RTT * 1.5 }, 5120).slice(1, -1);
    const down = runs.filter(([gain]) => gain === 0.75).map(([, length]) => length);
    expect(down.length).toBeGreaterThan(0);
    expect(new Set(down)).toEqual(new Set([1]));
  });

  test('the 0.75 phase ends at the first ack that shows in flight at or below the pipe, even within its round', () => {
    const { cc, path } = fresh();
    rounds(cc, path, 40, { rate: 5120 });
    // Two acks per round trip, each releasing half a round's bytes and showing half the pipe in flight.
    const deliveredAt: number[] = [path.delivered, path.delivered];
    const downAcks: number[] = [];
    let downRun = 0;
    for (let i = 0; i < 800; i++) {
      const acked = (5120 * RTT) / 2;
      const prior = deliveredAt[deliveredAt.length - 2]!;
      path.delivered += acked;
      path.now += RTT / 2;
      deliveredAt.push(path.delivered);
      cc.onAcked({ ackedBytes: acked, inFlight: acked, rtt: RTT, deliveryRate: 5120, interval: RTT, appLimited: false, delivered: path.delivered, priorDelivered: prior }, path.now);
      const down = Math.round((cc.pacingRate / 5120) * 100) === 75;
      if (down) downRun++;
      else if (downRun > 0) (downAcks.push(downRun), (downRun = 0));
    }
    expect(downAcks.length).toBeGreaterThan(0);
    expect(new Set(downAcks)).toEqual(new Set([1])); // half a round, not the whole
  });

  test('startup ends in the first round whose every RTT is 4 ms or an eighth above the last round\'s, though the bandwidth still grows', () => {
    const { cc, path } = fresh();
    for (let rate = 100; rate <= 1600; rate *= 2) ackedRound(cc, path, { rate });
    expect(cc.estimate.state).toBe('startup');
    ackedRound(cc, path, { rate: 3200, rtt: RTT + 5 }); // 5 ms over the last round's minimum, beyond its 4 ms
    expect(cc.estimate.state).not.toBe('startup');
    const noisy = fresh();
    for (let rate = 100; rate <= 1600; rate *= 2) ackedRound(noisy.cc, noisy.path, { rate });
    ackedRound(noisy.cc, noisy.path, { rate: 3200, rtt: RTT + 3 }); // within it
    expect(noisy.cc.estimate.state).toBe('startup');
  });

  test('forwarding jitter of 2-10 ms on every packet (the round\'s minimum above the path\'s) does not end startup: the bandwidth does', () => {
    const { cc, path } = fresh();
    ackedRound(cc, path, { rate: 100 }); // one round at the path's floor
    let seed = 7;
    const jitter = (): number => ((seed = (seed * 48271) % 2147483647) % 800) / 100 + 2;
    let rate = 200;
    let n = 0;
    for (; n < 12 && cc.estimate.state === 'startup'; n++, rate = Math.min(2 * rate, 25_600)) {
      let prior = path.delivered;
      for (let i = 0; i < 10; i++) {
        const rtt = RTT + jitter();
        const bytes = Math.round((rate * RTT) / 10);
        path.delivered += bytes;
        path.now += RTT / 10;
        cc.onAcked({ ackedBytes: bytes, inFlight: rate * RTT, rtt, deliveryRate: rate, interval: rtt, appLimited: false, delivered: path.delivered, priorDelivered: prior }, path.now);
        if (i === 0) prior = path.delivered - 1;
      }
    }
    expect(cc.estimate.bandwidth).toBe(25_600); // it grew to the path's rate before leaving startup
  });

  test('startup resumes when the first probe after it finds 10 % more: a brief queue did not mean a full pipe', () => {
    const { cc, path } = fresh();
    const capacity = 8000;
    for (let rate = 100; rate <= 800; rate *= 2) ackedRound(cc, path, { rate });
    ackedRound(cc, path, { rate: 800, rtt: RTT + 10 }); // a burst queued somewhere for a round
    expect(cc.estimate.state).not.toBe('startup');
    // The path delivers what is paced, up to its capacity.
    let rounds = 0;
    while (cc.estimate.bandwidth < 0.9 * capacity && rounds < 100) {
      ackedRound(cc, path, { rate: Math.min(capacity, cc.pacingRate) });
      rounds++;
    }
    expect(rounds).toBeLessThanOrEqual(15); // with probes 63 rounds apart it would take hundreds
  });

  test('the first probe after startup comes within a few rounds though every RTT stays raised (queue drains do not put it off), and finds what the path has at the startup gain', () => {
    const { cc, path } = fresh();
    const capacity = 8000;
    for (let rate = 100; rate <= 800; rate *= 2) ackedRound(cc, path, { rate });
    ackedRound(cc, path, { rate: 800, rtt: RTT + 10 }); // startup ends on a brief queue
    const gains: number[] = [];
    let rounds = 0;
    for (; cc.estimate.bandwidth < 0.9 * capacity && rounds < 100; rounds++) {
      ackedRound(cc, path, { rate: Math.min(capacity, cc.pacingRate), rtt: RTT + 5 }); // the busy receiver's acks stay late
      gains.push(Math.round((cc.pacingRate / cc.estimate.bandwidth) * 100) / 100);
    }
    expect(gains.slice(0, 4)).toContain(1.25);
    expect(rounds).toBeLessThanOrEqual(12); // with probes 63 rounds apart it would take hundreds
  });

  test('packets severalfold larger (path-MTU probing) send it back to startup: the rate found at the old size is the end hosts\' limit, not the path\'s', () => {
    const { cc, path } = fresh();
    for (let rate = 10; rate <= 5120; rate *= 2) round(cc, path, { rate });
    rounds(cc, path, 20, { rate: 5120 });
    expect(cc.estimate.state).toBe('probe-bandwidth');
    cc.datagramSize = MSS; // the same size: nothing changes
    expect(cc.estimate.state).toBe('probe-bandwidth');
    cc.datagramSize = 1472; // Ethernet's: a small step, and startup would overflow the bottleneck's queue
    expect(cc.estimate.state).toBe('probe-bandwidth');
    cc.datagramSize = 65507;
    expect(cc.estimate.state).toBe('startup');
    // Each byte now costs fewer packets: the path delivers ten times as much, found in a few rounds.
    let n = 0;
    while (cc.estimate.bandwidth < 0.9 * 51_200 && n < 100) {
      round(cc, path, { rate: Math.min(51_200, cc.pacingRate) });
      n++;
    }
    expect(n).toBeLessThanOrEqual(6);
  });

  test('a queue standing through a cruising round is drained at once; one that is back after each drain is drained ever more rarely', () => {
    const { cc, path } = fresh();
    for (let i = 0; i < 30; i++) ackedRound(cc, path, { rate: 5120 });
    expect(cc.estimate.state).toBe('probe-bandwidth');
    const gain = (): number => Math.round((cc.pacingRate / 5120) * 100) / 100;
    // Cruising (85 packets in the pipe: the next probe is ~63 rounds away), then a queue stands.
    while (gain() !== 1) ackedRound(cc, path, { rate: 5120 });
    for (let i = 0; i < 3; i++) ackedRound(cc, path, { rate: 5120 });
    ackedRound(cc, path, { rate: 5120, rtt: RTT + 4 });
    ackedRound(cc, path, { rate: 5120, rtt: RTT + 4 }, 1); // the next round's first ack judges the last (the queue still there)
    expect(gain()).toBe(0.75);
    // A queue that never goes (not ours to drain): over 200 rounds, far fewer than 100 drains.
    let drains = 0;
    let before = gain();
    for (let i = 0; i < 200; i++) {
      ackedRound(cc, path, { rate: 5120, rtt: RTT + 4 });
      if (gain() === 0.75 && before !== 0.75) drains++;
      before = gain();
    }
    expect(drains).toBeGreaterThan(0);
    expect(drains).toBeLessThanOrEqual(20);
  });

  test('an estimate a few % above the bottleneck (the max filter\'s upper tail): the queue it builds is drained, and pacing is held to what a round with the queue delivered; the queue stays short, the bottleneck busy', () => {
    const capacity = 5120;
    const { cc, path } = fresh();
    let queue = 0;
    let roundMark = 0;
    const queueDelays: number[] = [];
    const deliveries: number[] = [];
    for (let r = 0; r < 400; r++) {
      // One round trip through a bottleneck: what is sent above its rate joins its queue, which adds its drain time to the RTT.
      const rtt = RTT + queue / capacity;
      const sendRate = Math.min(cc.pacingRate, cc.window / rtt);
      const delivered = Math.min(capacity, sendRate + queue / rtt);
      queue = Math.max(0, queue + (sendRate - capacity) * rtt);
      const acks = 10;
      for (let i = 0; i < acks; i++) {
        const prior = i === 0 ? roundMark : roundMark - 1;
        path.delivered += (delivered * rtt) / acks;
        path.now += rtt / acks;
        if (i === 0) roundMark = path.delivered;
        // One ack in ten reports more than the bottleneck delivers: 20 % while startup's bursts end, 4 % after (ack timing).
        const rate = i === 5 ? (r < 40 ? 1.2 : 1.04) * delivered : delivered;
        cc.onAcked({ ackedBytes: (delivered * rtt) / acks, inFlight: Math.min(sendRate * rtt, cc.window), rtt, deliveryRate: rate, interval: rtt, appLimited: false, delivered: path.delivered, priorDelivered: prior }, path.now);
      }
      if (r >= 100) {
        queueDelays.push(queue / capacity);
        deliveries.push(delivered);
      }
    }
    const mean = (values: number[]): number => values.reduce((a, b) => a + b, 0) / values.length;
    expect(mean(queueDelays)).toBeLessThan(4);
    expect(mean(deliveries)).toBeGreaterThan(0.95 * capacity);
  });

  test('samples taken while the application limited the sending never lower the estimate', () => {
    const { cc, path } = fresh();
    rounds(cc, path, 30, { rate: 2000 });
    rounds(cc, path, 30, { rate: 50, appLimited: true });
    expect(cc.estimate.bandwidth).toBe(2000);
    rounds(cc, path, 12, { rate: 50 });
    expect(cc.estimate.bandwidth).toBe(50); // network-limited samples: the path did get slower
  });

  test('without a lower RTT for 10 s it probes the RTT: half the BDP (with the peer\'s ack delay) in flight for 200 ms and a round, then the window comes back', () => {
    const { cc, path } = fresh();
    rounds(cc, path, 50, { rate: 1000 });
    const cruising = cc.window;
    rounds(cc, path, 10_000 / 25 + 1, { rate: 1000, rtt: 25 }); // a queue: RTT 25 ms, never 20 again
    expect(cc.estimate.state).toBe('probe-rtt');
    expect(cc.window).toBeLessThanOrEqual(Math.max(4 * MSS, (1000 * (25 + ACK_DELAY_MS)) / 2));
    rounds(cc, path, 12, { rate: 1000, rtt: 25 });
    expect(cc.estimate.state).toBe('probe-bandwidth');
    expect(cc.estimate.minRtt).toBe(25);
    expect(cc.window).toBeGreaterThanOrEqual(cruising);
  });

  test('a persistent timeout collapses the window to 4 packets; acks bring it back', () => {
    const { cc, path } = fresh();
    rounds(cc, path, 50, { rate: 1000 });
    const cruising = cc.window;
    cc.onTimeout();
    expect(cc.window).toBe(4 * MSS);
    rounds(cc, path, 5, { rate: 1000 });
    expect(cc.window).toBeGreaterThanOrEqual(cruising * 0.9);
  });

  test('before any sample it does not pace and allows the initial window of 10 packets', () => {
    const { cc } = fresh();
    expect(cc.pacingRate).toBe(Infinity);
    expect(cc.window).toBe(10 * MSS);
  });
});
