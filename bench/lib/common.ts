/** Shared pieces of the benchmark runners: flags, machine description, result shape, entry point. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import { PerformanceObserver, performance, type IntervalHistogram } from 'node:perf_hooks';
import { childGuard, emit, isChild } from './proc';

/** `--name value` and `--flag` (true) pairs; `--name=value` also works. */
export type Flags = ReadonlyMap<string, string | true>;

export function parseFlags(argv: readonly string[] = process.argv.slice(2)): Flags {
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) continue;
    const eq = arg.indexOf('=');
    if (eq > 0) {
      flags.set(arg.slice(2, eq), arg.slice(eq + 1));
      continue;
    }
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('--')) {
      flags.set(arg.slice(2), next);
      i++;
    } else {
      flags.set(arg.slice(2), true);
    }
  }
  return flags;
}

export function flagString(flags: Flags, name: string): string | undefined {
  const v = flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

export function flagNumber(flags: Flags, name: string, fallback: number): number {
  const v = flags.get(name);
  if (typeof v !== 'string') return fallback;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`--${name} needs a number, got '${v}'`);
  return n;
}

export function flagBool(flags: Flags, name: string): boolean {
  const v = flags.get(name);
  return v === true || v === 'true' || v === '1';
}

/** Milliseconds on a clock comparable across processes of this machine (epoch-based, sub-ms). */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

/** process.cpuUsage() delta in seconds (user + system). */
export function cpuSeconds(since: NodeJS.CpuUsage): { user: number; system: number; total: number } {
  const d = process.cpuUsage(since);
  return { user: d.user / 1e6, system: d.system / 1e6, total: (d.user + d.system) / 1e6 };
}

export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly os: string;
  readonly fdLimit: string;
}

export function machineInfo(): MachineInfo {
  let fdLimit = 'unknown';
  try {
    fdLimit = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
  } catch {
    // no shell: leave unknown
  }
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    fdLimit,
  };
}

export function machineMarkdown(m: MachineInfo): string {
  return `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, Node ${m.node}, ${m.os}, open-file limit ${m.fdLimit}`;
}

export interface BenchResult {
  readonly name: string;
  readonly title: string;
  /** Markdown: a table (or several) and notes. */
  readonly markdown: string;
  /** The same numbers, for the JSON file. */
  readonly data: unknown;
  readonly seconds: number;
}

/**
 * Entry point of a benchmark file. Roles other than the default are sub-processes of the
 * benchmark (sender, receiver, …) handled by `roles`. The default role runs the benchmark:
 * as a child of run.ts it sends the result as a message; run directly it prints the markdown.
 */
export function benchMain(
  limitMs: (flags: Flags) => number,
  run: (flags: Flags) => Promise<BenchResult>,
  roles: Record<string, (flags: Flags) => Promise<void>> = {},
): void {
  const flags = parseFlags();
  const role = flagString(flags, 'role');
  if (role !== undefined) {
    const handler = roles[role];
    if (handler === undefined) throw new Error(`unknown --role ${role}`);
    void handler(flags);
    return;
  }
  if (isChild()) childGuard(limitMs(flags));
  const started = performance.now();
  run(flags).then(
    (result) => {
      if (isChild()) emit({ type: 'result', result: { ...result, seconds: (performance.now() - started) / 1000 } });
      else process.stdout.write(`${machineMarkdown(machineInfo())}\n\n${result.markdown}\n`);
      process.exit(0);
    },
    (error: unknown) => {
      const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
      if (isChild()) emit({ type: 'error', message: text });
      else process.stderr.write(`${text}\n`);
      process.exit(1);
    },
  );
}

/** A markdown table from a header row and rows of cells. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`;
  const align = header.map((_, i) => (i === 0 ? '---' : '---:'));
  return [line(header), line(align), ...rows.map(line)].join('\n');
}

/** Deterministic fill byte of the i-th 1 MiB block in the bulk streams. */
export function fillByte(index: number): number {
  return (index * 7 + 13) & 0xff;
}

/** Linux UDP counters (system-wide, /proc/net/snmp): receive-buffer overflows and errors. Undefined elsewhere. */
export function udpCounters(): { rcvbufErrors: number; inErrors: number } | undefined {
  try {
    const lines = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
    const names = lines[0]!.split(/\s+/);
    const values = lines[1]!.split(/\s+/).map(Number);
    const get = (name: string): number => values[names.indexOf(name)] ?? NaN;
    return { rcvbufErrors: get('RcvbufErrors'), inErrors: get('InErrors') };
  } catch {
    return undefined;
  }
}

/** Sampling period for perf_hooks.monitorEventLoopDelay. */
export const LOOP_RESOLUTION_MS = 2;

/** Event-loop delay beyond the sampling period, ms (p50, p99, max). */
export function loopDelaySummary(h: IntervalHistogram): { p50: number; p99: number; max: number } {
  const ms = (ns: number): number => Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS);
  return { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max) };
}

/** Garbage-collection pauses from now on: call the result for { count, totalMs, maxMs }. */
export function watchGc(): () => { count: number; totalMs: number; maxMs: number } {
  let count = 0;
  let totalMs = 0;
  let maxMs = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      count++;
      totalMs += entry.duration;
      if (entry.duration > maxMs) maxMs = entry.duration;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return () => ({ count, totalMs, maxMs });
}
