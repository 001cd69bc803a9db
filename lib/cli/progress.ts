/**
 * Progress and summaries for the transfer commands: a bar with rate and ETA redrawn in place on a
 * terminal, plain lines (every 10 %, or every few seconds) otherwise; byte and duration formats;
 * a connection's statistics as summary lines.
 *
 * Our own ~100 lines rather than cli-progress: its non-TTY mode redraws the bar on a timer, not a
 * line per 10 %, so that path would stay ours; its rate and ETA come from its own moving window,
 * a second time base beside the summary's; and it would add five runtime packages for the part
 * left (drawing one bar in place).
 */
import type { ConnectionStats } from '../index';

/** Where progress is drawn: process.stderr, or a stand-in in tests. */
export interface ProgressOutput {
  write(text: string): unknown;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

export interface ProgressOptions {
  /** Draw a bar in place (default: whether the output is a TTY). */
  readonly tty?: boolean;
  /** Milliseconds clock (default performance.now). */
  readonly now?: () => number;
}

/** Minimum time between two redraws of the bar on a terminal. */
const REDRAW_MS = 100;
/** Without a terminal: a line per 10 % done, and at least one per this many ms. */
const PLAIN_EVERY_MS = 5000;

/** Progress of one transfer of `total` bytes. */
export class Progress {
  private done = 0;
  /** When the transfer started, on the `now` clock: the time base of the rate. */
  readonly started: number;
  private lastDraw = -Infinity;
  private lastDecile = 0;
  private drawn = false;
  private finished = false;
  private readonly tty: boolean;
  private readonly now: () => number;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly out: ProgressOutput = process.stderr,
    options: ProgressOptions = {},
  ) {
    this.tty = options.tty ?? out.isTTY === true;
    this.now = options.now ?? (() => performance.now());
    this.started = this.now();
    // On a terminal the bar shows at once; plain lines start at the first 10 % (or after a while).
    if (!this.tty) this.lastDraw = this.started;
  }

  /** `done` bytes of the total so far (at `now`, when the caller also uses that instant for a summary). */
  update(done: number, now = this.now()): void {
    if (this.finished) return;
    this.done = done;
    if (this.tty) {
      if (now - this.lastDraw < REDRAW_MS && done < this.total) return;
      this.lastDraw = now;
      this.drawn = true;
      this.out.write(`\r${this.barLine(now)}\x1b[K`);
      return;
    }
    const decile = this.total === 0 ? 10 : Math.floor((done / this.total) * 10);
    if (decile > this.lastDecile || now - this.lastDraw >= PLAIN_EVERY_MS) {
      this.lastDecile = Math.max(decile, this.lastDecile);
      this.lastDraw = now;
      this.out.write(`${this.plainLine(now)}\n`);
    }
  }

  /** Ends the bar (a last redraw and a line break on a terminal). Idempotent. */
  finish(now = this.now()): void {
    if (this.finished) return;
    if (this.tty) {
      this.out.write(`\r${this.barLine(now)}\x1b[K\n`);
      this.drawn = false;
    }
    this.finished = true;
  }

  /** Removes the bar from the terminal line (before printing something else). */
  clear(): void {
    if (this.tty && this.drawn) this.out.write('\r\x1b[K');
    this.drawn = false;
  }

  private figures(now: number): { percent: string; amount: string; rate: string; eta: string } {
    const seconds = (now - this.started) / 1000;
    const rate = seconds > 0 ? this.done / seconds : 0;
    const left = this.total - this.done;
    const eta = left <= 0 ? '0:00' : rate > 0 ? formatClock(left / rate) : '-:--';
    const fraction = this.total === 0 ? 1 : this.done / this.total;
    return {
      percent: `${Math.floor(fraction * 100)}%`,
      amount: `${formatBytes(this.done)} of ${formatBytes(this.total)}`,
      rate: `${formatBytes(rate)}/s`,
      eta,
    };
  }

  private barLine(now: number): string {
    const f = this.figures(now);
    const tail = ` ${f.percent.padStart(4)}  ${f.amount}  ${f.rate}  ETA ${f.eta}`;
    // One column short of the width, so the cursor never wraps; 80 when the terminal does not say.
    const columns = (this.out.columns !== undefined && this.out.columns > 0 ? this.out.columns : 80) - 1;
    const label = this.label.length > 24 ? `${this.label.slice(0, 23)}…` : this.label;
    const room = columns - label.length - tail.length - 3;
    // Too narrow for a bar: the figures matter more.
    if (room < 10) return `${label}${tail}`.slice(0, columns);
    const width = Math.min(40, room);
    const fraction = this.total === 0 ? 1 : Math.min(1, this.done / this.total);
    const full = Math.round(fraction * width);
    return `${label} [${'#'.repeat(full)}${'-'.repeat(width - full)}]${tail}`;
  }

  private plainLine(now: number): string {
    const f = this.figures(now);
    return `${this.label}: ${f.percent} (${f.amount}, ${f.rate}, ETA ${f.eta})`;
  }
}

/** 1536 → '1.5 KiB'; 268435456 → '256.00 MiB'. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(2)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

/** Seconds as m:ss (or h:mm:ss). */
export function formatClock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** "256.00 MiB in 2.41 s (106.2 MiB/s)". */
export function formatAmount(bytes: number, ms: number): string {
  const seconds = ms / 1000;
  const rate = seconds > 0 ? `${formatBytes(bytes / seconds)}/s` : '-';
  return `${formatBytes(bytes)} in ${seconds.toFixed(2)} s (${rate})`;
}

/** A connection's statistics as summary lines. */
export function statsLines(stats: ConnectionStats): string[] {
  const rtt = stats.rtt === undefined ? '-' : `${stats.rtt.toFixed(1)} ms`;
  return [
    `connection: round trip ${rtt} smoothed, RTO ${stats.rto.toFixed(0)} ms, congestion window ${stats.congestionWindow}, peer window ${stats.peerWindow}`,
    `  sent:     ${stats.messagesSent} messages, ${stats.dataPacketsSent} DATA packets (${stats.retransmissions} retransmitted, ${stats.repeatsAnswered} for REPEATs), ` +
      `${stats.packetsSent} packets, ${formatBytes(stats.bytesSent)}, ${stats.acksSent} acks, ${stats.repeatsSent} REPEATs, ${stats.pingsSent} pings`,
    `  received: ${stats.messagesReceived} messages, ${stats.dataPacketsReceived} DATA packets (${stats.duplicatesReceived} duplicates), ` +
      `${stats.packetsReceived} packets, ${formatBytes(stats.bytesReceived)}, ${stats.droppedDatagrams} dropped`,
  ];
}

/** Peak resident memory of this process so far, in bytes. */
export function peakRss(): number {
  return process.resourceUsage().maxRSS * 1024;
}
