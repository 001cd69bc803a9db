import { INITIAL_WINDOW_PACKETS, type AckSample, type CongestionController } from './controller';
import { WindowedMax } from './windowed-max';

/** Startup doubles the sending rate every round trip (2 / ln 2). */
const STARTUP_GAIN = 2 / Math.LN2;
/**
 * Probing for bandwidth, as BBRv3 does it: probe up at 1.25 for a round trip, pace at 0.75 until
 * what that queued has drained (a round at most: 0.75 for a round takes back what 1.25 added, and
 * acks that arrive in batches may never show the pipe empty), then cruise at 1 for 2-3 s or as
 * many rounds as the pipe holds packets (at most 63, so a short path probes often). Probing every
 * few round trips, as BBRv1 did, keeps a standing queue of a quarter of the BDP that delays every
 * other message on the connection.
 */
type ProbePhase = 'up' | 'down' | 'cruise';
const PROBE_UP_GAIN = 1.25;
const PROBE_DOWN_GAIN = 0.75;
const PROBE_DOWN_MAX_ROUNDS = 1;
/** A probe at 1.25 that raised the estimate this much found a faster path (a full one delivers no more, the max filter's noise adds a few %): probe up again at once (or resume startup). */
const PROBE_FOUND_MORE = 1.1;
/** After startup, the first probe comes this many rounds into the cruise, to confirm the pipe is full. */
const PROBE_SOON_ROUNDS = 2;
const PROBE_WAIT_MS = 2000;
const PROBE_WAIT_SPREAD_MS = 1000;
const PROBE_MAX_CRUISE_ROUNDS = 63;
/** Spreads the cruise lengths of connections sharing a bottleneck, so they do not probe in step. */
const GOLDEN_FRACTION = 0.6180339887;
/** In flight beyond the path's bandwidth-delay product: room for delayed and aggregated acks. */
const CWND_GAIN = 2;
const BANDWIDTH_ROUNDS = 10;
const MIN_RTT_LIFETIME_MS = 10_000;
const PROBE_RTT_MS = 200;
/** Startup ends when the bandwidth estimate grew by less than 25 % in 3 rounds in a row. */
const FULL_BANDWIDTH_GROWTH = 1.25;
const FULL_BANDWIDTH_ROUNDS = 3;
/**
 * Loss is read as congestion only when more than this fraction of a round's bytes were lost:
 * random loss of a few percent (radio, a busy middlebox) says nothing about the path's capacity,
 * while an overflowing queue loses a large part of whatever exceeds it.
 */
export const CONGESTION_LOSS_RATE = 0.15;
/** ...and only when that is at least this many full packets: in a small round, two random losses are already 15 %. */
const CONGESTION_LOSS_PACKETS = 8;
/** What a round of congestive loss leaves of the window. */
const LOSS_REDUCTION = 0.7;
/** After a round without congestive loss, an in-flight cap set by loss grows back by this much. */
const CAP_GROWTH = 1.25;
const MINIMUM_WINDOW_PACKETS = 4;
/**
 * A receiver may hold an acknowledgement back this long (PROTOCOL.md §5), and one that reads a
 * batch of datagrams per event-loop turn answers a burst late: the round trip acks reveal is the
 * path's minimum plus this. Counted in the bandwidth-delay product, so the window covers it (on
 * loopback the path's minimum is 0.1 ms, the endpoints' turns several ms).
 */
export const ACK_DELAY_MS = 5;
/** How much larger packets must get (path-MTU probing) to send the model back to startup. */
const SIZE_GROWTH_FOR_STARTUP = 2;

/**
 * A queue stands when every RTT sampled in a round (at least QUEUE_RTT_SAMPLES of them) is above
 * the minimum by more than the larger of QUEUE_TOLERANCE_MS and an eighth of it (HyStart++'s
 * test, RFC 9406, with a smaller floor: the queue it lets stand delays every message).
 */
const QUEUE_TOLERANCE_MS = 2;
const QUEUE_TOLERANCE_FRACTION = 1 / 8;
const QUEUE_RTT_SAMPLES = 8;
/**
 * Startup's queue test is HyStart++'s own: this round's minimum against the last round's, by
 * an eighth of it clamped to 4-16 ms. Against the path's minimum, a single lucky sample would
 * make forwarding jitter of a few ms (every round's minimum above the floor) look like a queue
 * and end startup at a fraction of the rate (measured: 11.7 MB/s on a path carrying 40).
 */
const STARTUP_QUEUE_MIN_MS = 4;
const STARTUP_QUEUE_MAX_MS = 16;
const QUEUE_MAX_DRAIN_GAP = 64;
/** A standing queue may be a BDP or more (what startup left, a cwnd-limited cruise): 0.75 for a round takes back a quarter. */
const QUEUE_DRAIN_MAX_ROUNDS = 4;

type State = 'startup' | 'drain' | 'probe-bandwidth' | 'probe-rtt';

/**
 * A model-based controller in the manner of BBR (draft-ietf-ccwg-bbr): it estimates the path's
 * bottleneck bandwidth (the largest delivery rate of the last 10 round trips) and its minimum
 * RTT, paces at a gain times that bandwidth and keeps twice the bandwidth-delay product in
 * flight. Random loss does not shrink it, so it keeps the rate a lossy path really has; loss
 * beyond CONGESTION_LOSS_RATE in a round (a queue overflowing) caps what is in flight, as
 * BBRv2's inflight_hi does, and a persistent timeout collapses the window as every controller must.
 * Since random loss cannot tell it of a queue, the RTT does: a queue standing through a round ends
 * startup before it overflows and, while cruising, is drained and holds pacing to what that
 * round delivered until the next probe.
 */
export class Bbr implements CongestionController {
  private state: State = 'startup';
  private pacingGain = STARTUP_GAIN;
  private cwndGain = STARTUP_GAIN;
  private readonly bandwidth = new WindowedMax(BANDWIDTH_ROUNDS);
  /** Bytes acknowledged beyond what the bandwidth explains (acks arriving in bursts), largest of 10 rounds. */
  private readonly extraAcked = new WindowedMax(BANDWIDTH_ROUNDS);
  private aggregationStart = -Infinity;
  private aggregationDelivered = 0;
  private minRtt = Infinity;
  private minRttAt = -Infinity;
  private cwnd: number;
  private round = 0;
  private nextRoundDelivered = 0;
  private fullBandwidth = 0;
  private fullBandwidthRounds = 0;
  private filled = false;
  private phase: ProbePhase = 'cruise';
  private phaseStart = 0;
  private phaseRound = 0;
  private cruiseWait = PROBE_WAIT_MS;
  /** The estimate when the last probe up began, and when the cruise began. */
  private probeUpBandwidth = 0;
  private cruiseBandwidth = 0;
  /** Startup has ended and no probe has yet shown the pipe full: probe soon, and resume startup if the probe finds more. */
  private startupUnconfirmed = false;
  /** The round by whose end the samples of what the last probe up sent are in (Infinity: no probe being judged). */
  private probeJudgedBy = Infinity;
  private probeRttDoneAt = Infinity;
  private probeRttRound = 0;
  /** The largest packet sent now (path-MTU probing may raise it). */
  private size: number;
  private cwndBeforeProbeRtt = 0;
  private inFlightCap = Infinity;
  private roundLost = 0;
  /** The lowest RTT sampled this round, and how many were: see QUEUE_TOLERANCE_MS. */
  private roundMinRtt = Infinity;
  private roundRttSamples = 0;
  private lastRoundMinRtt = Infinity;
  private queueDrainRound = -Infinity;
  private queueDrainGap = 1;
  private queueGoneSinceDrain = true;
  private roundDelivered = 0;
  /** Delivered when the round began, and when: a round's average delivery rate. */
  private roundStartDelivered = 0;
  private roundStartAt = -Infinity;
  private lastRoundRate = 0;
  private roundAppLimited = false;
  private lastRoundAppLimited = true;
  /** What the last cruising round with a standing queue delivered: pacing above it only rebuilds the queue. Lifted by the next probe up. */
  private bandwidthCeiling = Infinity;
  /** The 0.75 phase drains a standing queue, not what a probe up queued. */
  private drainingQueue = false;

  constructor(
    datagramSize: number,
    private readonly maxWindow: number,
  ) {
    this.size = datagramSize;
    this.cwnd = INITIAL_WINDOW_PACKETS * datagramSize;
  }

  get datagramSize(): number {
    return this.size;
  }

  /**
   * Path-MTU probing raised the packet size. When it grew severalfold, each byte costs both ends
   * far fewer packets, and on a path the end hosts limit (loopback: a system call per datagram)
   * the rate measured at the old size says little about the new one: look for it as at the
   * start. A step such as 1200 to Ethernet's 1472 changes little, and startup's gain would only
   * overflow the bottleneck's queue (measured: 854 drops beside a control channel).
   */
  set datagramSize(size: number) {
    const severalfold = size >= SIZE_GROWTH_FOR_STARTUP * this.size;
    this.size = size;
    if (severalfold && this.filled && this.state !== 'probe-rtt') this.resumeStartup();
  }

  private get minimum(): number {
    return MINIMUM_WINDOW_PACKETS * this.size;
  }

  get window(): number {
    let window = Math.min(this.cwnd, this.inFlightCap, this.maxWindow);
    if (this.state === 'probe-rtt') window = Math.min(window, this.probeRttWindow());
    return Math.max(this.minimum, Math.floor(window));
  }

  get pacingRate(): number {
    const bandwidth = Math.min(this.bandwidth.value, this.bandwidthCeiling);
    return bandwidth === 0 ? Infinity : this.pacingGain * bandwidth;
  }

  /** The model, for stats and tests: bytes per ms and ms. */
  get estimate(): { bandwidth: number; minRtt: number; state: State } {
    return { bandwidth: this.bandwidth.value, minRtt: this.minRtt, state: this.state };
  }

  onAcked(sample: AckSample, now: number): void {
    const minRttExpired = this.minRtt !== Infinity && now - this.minRttAt > MIN_RTT_LIFETIME_MS;
    if (sample.rtt !== undefined && (sample.rtt <= this.minRtt || minRttExpired)) {
      this.minRtt = sample.rtt;
      this.minRttAt = now;
    }
    const roundStart = sample.ackedBytes > 0 && sample.priorDelivered >= this.nextRoundDelivered;
    let queueStood = false;
    if (roundStart) {
      this.nextRoundDelivered = sample.delivered;
      this.round++;
      this.lastRoundRate = (sample.delivered - this.roundStartDelivered) / (now - this.roundStartAt);
      this.roundStartDelivered = sample.delivered;
      this.roundStartAt = now;
      this.lastRoundAppLimited = this.roundAppLimited;
      this.roundAppLimited = false;
      queueStood = this.roundRttSamples >= QUEUE_RTT_SAMPLES && this.roundMinRtt > this.minRtt + this.queueTolerance();
      if (this.roundMinRtt !== Infinity) this.lastRoundMinRtt = this.roundMinRtt;
      this.roundMinRtt = Infinity;
      this.roundRttSamples = 0;
    }
    if (sample.rtt !== undefined) {
      this.roundRttSamples++;
      if (sample.rtt < this.roundMinRtt) this.roundMinRtt = sample.rtt;
      // Every RTT of this round so far shows a queue the last round did not: the pipe is full, before a round at the startup gain overflows it.
      if (this.state === 'startup' && this.roundRttSamples >= QUEUE_RTT_SAMPLES && this.roundMinRtt >= this.lastRoundMinRtt + this.startupQueueThreshold()) this.endStartup();
    }
    if (sample.appLimited) this.roundAppLimited = true;
    const rate = sample.deliveryRate;
    if (rate !== undefined && sample.interval >= Math.min(this.minRtt, sample.rtt ?? Infinity) && (!sample.appLimited || rate >= this.bandwidth.value)) {
      this.bandwidth.update(rate, this.round);
    }
    this.roundDelivered += sample.ackedBytes;
    this.updateAggregation(sample.ackedBytes, now);
    if (roundStart) {
      this.judgeLoss();
      if (!this.filled && !sample.appLimited && this.state === 'startup') this.checkFullBandwidth();
      this.answerQueue(queueStood, now);
    }
    this.advanceState(sample, now, minRttExpired && this.state !== 'probe-rtt');
    this.growWindow(sample.ackedBytes);
  }

  onLoss(_sentAt: number, _now: number, bytes: number): void {
    this.roundLost += bytes;
  }

  onTimeout(): void {
    this.cwnd = this.minimum;
  }

  private bdp(): number {
    const bandwidth = this.bandwidth.value;
    return bandwidth === 0 || this.minRtt === Infinity ? 0 : bandwidth * (this.minRtt + ACK_DELAY_MS);
  }

  /**
   * A queue that stands through a whole round while cruising means the bandwidth estimate is high
   * (a max filter keeps the upper tail of noisy samples, a few % above the mean): until the next
   * probe, pace at no more than what that round delivered, and drain the queue at 0.75 until an RTT
   * shows it gone (a few rounds at most: one takes back only a quarter of a BDP). A queue
   * that no drain removes is not ours (a window-limited flow queues at a slow receiver, a
   * competing flow fills the buffer): draining again gains nothing and costs a quarter of a
   * round, so the gap between drains doubles until a round shows the queue gone.
   */
  private answerQueue(queueStood: boolean, now: number): void {
    if (!queueStood) {
      this.queueGoneSinceDrain = true;
      return;
    }
    // Right after startup the probe that judges it is a round or two away, and draining would put it off.
    if (this.state !== 'probe-bandwidth' || this.phase !== 'cruise' || this.startupUnconfirmed) return;
    if (this.round - this.queueDrainRound < this.queueDrainGap) return;
    this.queueDrainGap = this.queueGoneSinceDrain ? 1 : Math.min(2 * this.queueDrainGap, QUEUE_MAX_DRAIN_GAP);
    this.queueGoneSinceDrain = false;
    this.queueDrainRound = this.round;
    this.enterProbeBandwidth(now, 'down');
    this.drainingQueue = true;
    // The bottleneck was busy all round: what the round delivered is its rate.
    if (!this.lastRoundAppLimited) this.bandwidthCeiling = this.lastRoundRate;
  }

  private queueTolerance(): number {
    return Math.max(QUEUE_TOLERANCE_MS, this.minRtt * QUEUE_TOLERANCE_FRACTION);
  }

  private startupQueueThreshold(): number {
    return Math.min(STARTUP_QUEUE_MAX_MS, Math.max(STARTUP_QUEUE_MIN_MS, this.lastRoundMinRtt * QUEUE_TOLERANCE_FRACTION));
  }

  /** What the path itself holds, without a queue: where draining stops. */
  private pipe(): number {
    const bandwidth = this.bandwidth.value;
    return bandwidth === 0 || this.minRtt === Infinity ? 0 : bandwidth * this.minRtt;
  }

  private probeRttWindow(): number {
    return Math.max(this.minimum, this.bdp() / 2);
  }

  /** At the end of each round: was its loss congestion? */
  private judgeLoss(): void {
    const lost = this.roundLost;
    const total = lost + this.roundDelivered;
    this.roundLost = 0;
    this.roundDelivered = 0;
    if (lost > CONGESTION_LOSS_RATE * total && lost >= CONGESTION_LOSS_PACKETS * this.size) {
      this.inFlightCap = Math.max(this.minimum, Math.min(this.cwnd, this.inFlightCap) * LOSS_REDUCTION);
      this.cwnd = Math.min(this.cwnd, this.inFlightCap);
      if (!this.filled) this.filled = true; // startup overshot: drain
      return;
    }
    if (this.inFlightCap === Infinity) return;
    this.inFlightCap *= CAP_GROWTH;
    if (this.inFlightCap > 2 * this.targetWindow()) this.inFlightCap = Infinity;
  }

  private checkFullBandwidth(): void {
    const bandwidth = this.bandwidth.value;
    if (bandwidth >= this.fullBandwidth * FULL_BANDWIDTH_GROWTH) {
      this.fullBandwidth = bandwidth;
      this.fullBandwidthRounds = 0;
      return;
    }
    if (++this.fullBandwidthRounds >= FULL_BANDWIDTH_ROUNDS) this.endStartup();
  }

  private endStartup(): void {
    this.filled = true;
    this.startupUnconfirmed = true;
  }

  private advanceState(sample: AckSample, now: number, enterProbeRtt: boolean): void {
    if (enterProbeRtt) {
      this.state = 'probe-rtt';
      this.pacingGain = 1;
      this.cwndBeforeProbeRtt = Math.max(this.cwndBeforeProbeRtt, this.cwnd);
      this.probeRttDoneAt = Infinity;
      return;
    }
    switch (this.state) {
      case 'startup':
        if (this.filled) {
          this.state = 'drain';
          this.pacingGain = 1 / STARTUP_GAIN;
        }
        return this.state === 'drain' ? this.advanceState(sample, now, false) : undefined;
      case 'drain':
        if (sample.inFlight <= this.pipe()) this.enterProbeBandwidth(now, 'cruise');
        return;
      case 'probe-bandwidth':
        return this.advanceProbe(sample, now);
      case 'probe-rtt':
        if (this.probeRttDoneAt === Infinity) {
          if (sample.inFlight <= this.probeRttWindow()) {
            this.probeRttDoneAt = now + PROBE_RTT_MS;
            this.probeRttRound = this.round;
          }
          return;
        }
        if (now >= this.probeRttDoneAt && this.round > this.probeRttRound) {
          this.minRttAt = now;
          this.cwnd = Math.max(this.cwnd, this.cwndBeforeProbeRtt);
          this.cwndBeforeProbeRtt = 0;
          if (this.filled) this.enterProbeBandwidth(now, 'cruise');
          else {
            this.state = 'startup';
            this.pacingGain = STARTUP_GAIN;
          }
        }
        return;
    }
  }

  /**
   * The probe after startup found 10 % more: what ended startup was not a full pipe (random loss
   * stalls the estimate, a burst queues somewhere for a round). As HyStart++ returns from its
   * conservative phase, grow at the startup gain again.
   */
  private resumeStartup(): void {
    this.state = 'startup';
    this.filled = false;
    this.startupUnconfirmed = false;
    this.probeJudgedBy = Infinity;
    this.bandwidthCeiling = Infinity;
    this.pacingGain = STARTUP_GAIN;
    this.cwndGain = STARTUP_GAIN;
    this.fullBandwidth = this.bandwidth.value;
    this.fullBandwidthRounds = 0;
  }

  /**
   * Until a round after a probe up has ended, its samples come in: one that found 10 % more
   * probes again (or resumes a startup that ended early); once they are all in and found no more,
   * the pipe is full. A queue drain is no probe and confirms nothing.
   */
  private judgeProbe(now: number): boolean {
    if (this.probeJudgedBy === Infinity) return false;
    if (this.bandwidth.value >= this.probeUpBandwidth * PROBE_FOUND_MORE) {
      if (this.startupUnconfirmed) this.resumeStartup();
      else this.enterProbeBandwidth(now, 'up');
      return true;
    }
    if (this.round > this.probeJudgedBy) {
      this.startupUnconfirmed = false;
      this.probeJudgedBy = Infinity;
    }
    return false;
  }

  private advanceProbe(sample: AckSample, now: number): void {
    const rounds = this.round - this.phaseRound;
    if (this.phase !== 'up' && this.judgeProbe(now)) return;
    switch (this.phase) {
      case 'up':
        if (now - this.phaseStart >= this.minRtt && rounds >= 1) {
          this.probeJudgedBy = this.round + 1;
          this.enterProbeBandwidth(now, 'down');
        }
        return;
      case 'down': {
        const queueGone = this.drainingQueue ? (sample.rtt !== undefined && sample.rtt <= this.minRtt + this.queueTolerance()) || rounds >= QUEUE_DRAIN_MAX_ROUNDS : rounds >= PROBE_DOWN_MAX_ROUNDS;
        if (sample.inFlight <= this.pipe() || queueGone) this.enterProbeBandwidth(now, 'cruise');
        return;
      }
      case 'cruise': {
        if (this.probeJudgedBy !== Infinity) return; // the last probe's samples are still coming in
        const packetsInPipe = Math.max(1, Math.floor(this.pipe() / this.size));
        const cruiseRounds = this.startupUnconfirmed ? PROBE_SOON_ROUNDS : Math.min(PROBE_MAX_CRUISE_ROUNDS, packetsInPipe);
        // Pacing at the estimate, the path delivered more: it has room, and waiting for the next probe wastes it.
        const roomFound = this.bandwidth.value >= this.cruiseBandwidth * PROBE_FOUND_MORE;
        if (now - this.phaseStart >= this.cruiseWait || rounds >= cruiseRounds || roomFound) this.enterProbeBandwidth(now, 'up');
        return;
      }
    }
  }

  private enterProbeBandwidth(now: number, phase: ProbePhase): void {
    this.state = 'probe-bandwidth';
    this.cwndGain = CWND_GAIN;
    this.phase = phase;
    this.drainingQueue = false;
    this.phaseStart = now;
    this.phaseRound = this.round;
    this.pacingGain = phase === 'up' ? PROBE_UP_GAIN : phase === 'down' ? PROBE_DOWN_GAIN : 1;
    if (phase === 'up') {
      this.probeUpBandwidth = this.bandwidth.value;
      this.bandwidthCeiling = Infinity;
    }
    if (phase === 'cruise') {
      this.cruiseBandwidth = this.bandwidth.value;
      this.cruiseWait = PROBE_WAIT_MS + PROBE_WAIT_SPREAD_MS * ((this.round * GOLDEN_FRACTION) % 1);
    }
  }

  /**
   * Acks that come in bursts (a receiver that reads a batch of datagrams per event-loop turn, or
   * delays its acks) deliver more in a short interval than the bandwidth explains; the window must
   * cover the excess, or the sender stalls between bursts and measures a lower rate than the path
   * has (draft-ietf-ccwg-bbr's extra_acked).
   */
  private updateAggregation(acked: number, now: number): void {
    const bandwidth = this.bandwidth.value;
    let expected = bandwidth * (now - this.aggregationStart);
    if (this.aggregationDelivered <= expected) {
      this.aggregationDelivered = 0;
      this.aggregationStart = now;
      expected = 0;
    }
    this.aggregationDelivered += acked;
    const extra = Math.min(this.aggregationDelivered - expected, this.cwnd);
    this.extraAcked.update(extra, this.round);
  }

  /** cwnd gain × BDP, what acks in bursts need beyond it, and room for a few packets more. */
  private targetWindow(): number {
    return this.cwndGain * this.bdp() + this.extraAcked.value + 3 * this.size;
  }

  private growWindow(acked: number): void {
    const target = this.targetWindow();
    if (this.filled) this.cwnd = Math.min(this.cwnd + acked, target);
    else if (this.cwnd < target || this.bdp() === 0) this.cwnd += acked;
    this.cwnd = Math.max(this.cwnd, this.minimum);
  }
}
