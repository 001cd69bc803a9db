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
    const gains = new Set<number>();
    for (let i = 0; i < 16; i++) {
      round(cc, path, { rate: 5120 });
      gains.add(Math.round((cc.pacingRate / 5120) * 100) / 100);
    }
    expect([...gains].sort()).toEqual([0.75, 1, 1.25]);
    expect(cc.window).toBeGreaterThanOrEqual(2 * 5120 * RTT);
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
