/**
 * The link emulator (shared/tools/linkem) for benchmarks over a real kernel path: two network
 * namespaces joined by linkem, which delays and drops packets per direction. This module sets the
 * namespaces up and always tears them down (on a normal end, an error, a signal, and, through a
 * small watchdog, when this process is killed outright), reads linkem's per-direction counters,
 * sets per-namespace sysctls, and runs node children inside a namespace with the `@@{json}`
 * protocol of proc.ts.
 *
 * Ownership: a file `owner` in the state folder names the benchmark process that set the path up.
 * A path set up by anyone else (no owner file, or a live owner) is never torn down; a benchmark
 * refuses to start over it instead.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { killAllChildren, sleep } from './proc';

/** shared/tools/linkem beside the repository (bench/dist/bench/lib → repo root is four levels up). */
export const LINKEM_DIR = process.env['LINKEM_DIR'] ?? path.resolve(__dirname, '../../../../../shared/tools/linkem');
export const STATE_DIR = process.env['RU_STATE'] ?? '/tmp/ru-bench';
export const NS_A = process.env['RU_NS_A'] ?? 'ruA';
export const NS_B = process.env['RU_NS_B'] ?? 'ruB';
export const IP_A = process.env['RU_IP_A'] ?? '10.77.0.1';
export const IP_B = process.env['RU_IP_B'] ?? '10.77.0.2';

/** One direction's counters as linkem prints them (cumulative since linkem started). */
export interface DirectionCounters {
  readonly in_pkts: number;
  readonly in_bytes: number;
  readonly drop_loss: number;
  readonly drop_queue: number;
  readonly drop_mem: number;
  readonly drop_write: number;
  readonly dup: number;
  readonly reordered: number;
  readonly out_pkts: number;
  readonly out_bytes: number;
  readonly max_queue: number;
  readonly pending: number;
}

export interface LinkCounters {
  readonly snap: number;
  readonly cpu_s: number;
  /** A → B (ruA to ruB). */
  readonly ab: DirectionCounters;
  /** B → A. */
  readonly ba: DirectionCounters;
}

/** The difference of two snapshots, per direction (the path's cost of one run). */
export interface LinkDelta {
  readonly cpuSeconds: number;
  readonly ab: DirectionCounters;
  readonly ba: DirectionCounters;
}

export function counterDelta(before: LinkCounters, after: LinkCounters): LinkDelta {
  const dir = (a: DirectionCounters, b: DirectionCounters): DirectionCounters => {
    const out: Record<string, number> = {};
    for (const key of Object.keys(b) as (keyof DirectionCounters)[]) {
      // max_queue and pending are levels, not totals: keep the later value.
      out[key] = key === 'max_queue' || key === 'pending' ? b[key] : b[key] - a[key];
    }
    return out as unknown as DirectionCounters;
  };
  return { cpuSeconds: after.cpu_s - before.cpu_s, ab: dir(before.ab, after.ab), ba: dir(before.ba, after.ba) };
}

/** Why the emulated path cannot be used here, or undefined when it can. */
export function linkemUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'needs Linux';
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'needs root (network namespaces, TUN devices)';
  if (!existsSync(path.join(LINKEM_DIR, 'netns-up.sh'))) return `no link emulator at ${LINKEM_DIR} (set LINKEM_DIR)`;
  if (!existsSync('/dev/net/tun')) return 'no /dev/net/tun';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore', timeout: 5000 });
  } catch {
    return "no 'ip' (iproute2)";
  }
  return undefined;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function namespaces(): string[] {
  try {
    return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8', timeout: 5000 })
      .split('\n')
      .map((l) => l.trim().split(/\s+/)[0] ?? '')
      .filter((n) => n !== '');
  } catch {
    return [];
  }
}

/** The linkem pid from its pidfile, only if that process really is linkem (never signal anything else). */
function linkemPid(): number | undefined {
  const pid = readPid(path.join(STATE_DIR, 'linkem.pid'));
  if (pid === undefined) return undefined;
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'linkem' ? pid : undefined;
  } catch {
    return undefined;
  }
}

// ---- the path ---------------------------------------------------------------------------------------

/** Impairment per direction in linkem's syntax ('delay=10,loss=2'); `both` applies to each way. */
export interface Impairment {
  readonly both?: string;
  readonly ab?: string;
  readonly ba?: string;
}

export function impairmentArgs(imp: Impairment, seed: number): string[] {
  return [
    ...(imp.both !== undefined ? ['-c', imp.both] : []),
    ...(imp.ab !== undefined ? ['-a', imp.ab] : []),
    ...(imp.ba !== undefined ? ['-b', imp.ba] : []),
    '--seed',
    String(seed),
  ];
}

let current: LinkPath | undefined;
let guardsInstalled = false;

/** Children die first (a namespace stays alive while a process is in it), then the path goes. */
function cleanUpSync(): void {
  killAllChildren();
  current?.downSync();
}

function installGuards(): void {
  if (guardsInstalled) return;
  guardsInstalled = true;
  // 'exit' runs on process.exit() too: childGuard's time limit, a closed stdin, proc.ts's own
  // signal handlers, benchMain's end all pass through here.
  process.on('exit', cleanUpSync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => process.exit(130));
  }
}

export class LinkPath {
  private upCalls = 0;
  private watchdog: ChildProcess | undefined;
  private readonly ownerFile = path.join(STATE_DIR, 'owner');
  private readonly allowedBackup = path.join(STATE_DIR, 'tcp_allowed_congestion_control.orig');
  /** The arguments of the last netns-up.sh call (what the link is doing now). */
  lastArgs: string[] = [];

  /**
   * Claims the path for this process. Refuses when namespaces or a linkem exist that another
   * live process set up, or that nobody owns (set up by hand): those are never torn down here.
   * A path left by a benchmark that was killed (its owner gone) is torn down first.
   * `maxSeconds` bounds the watchdog that tears the path down if this process is killed.
   */
  static acquire(maxSeconds: number): LinkPath {
    const why = linkemUnavailable();
    if (why !== undefined) throw new Error(`link emulator unavailable: ${why}`);
    if (current !== undefined) return current;
    const owner = readPid(path.join(STATE_DIR, 'owner'));
    const present = namespaces().filter((n) => n === NS_A || n === NS_B);
    const running = linkemPid();
    if (owner !== undefined && owner !== process.pid && pidAlive(owner)) {
      throw new Error(`the emulated path is in use by pid ${owner} (${path.join(STATE_DIR, 'owner')}); not touching it`);
    }
    if (owner === undefined && (present.length > 0 || running !== undefined)) {
      throw new Error(
        `namespaces ${present.join(', ') || '(none)'} / linkem pid ${running ?? '(none)'} exist and were not set up by this benchmark; ` +
          `if they are stale, run ${path.join(LINKEM_DIR, 'netns-down.sh')}`,
      );
    }
    const link = new LinkPath();
    if (owner !== undefined) {
      // Left behind by a benchmark that was killed.
      link.downScript();
      link.restoreAllowed();
    }
    mkdirSync(STATE_DIR, { recursive: true });
    writeFileSync(link.ownerFile, `${process.pid}\n`);
    current = link;
    installGuards();
    link.startWatchdog(maxSeconds);
    return link;
  }

  /**
   * Sets the impairment. The first call creates the namespaces and starts linkem; later ones
   * reconfigure it in place (linkem re-reads its config on SIGHUP and resets its random streams
   * and Gilbert-Elliott state, so every run at one seed starts from the same state).
   */
  up(imp: Impairment, seed: number): void {
    const args = impairmentArgs(imp, seed);
    execFileSync(path.join(LINKEM_DIR, 'netns-up.sh'), args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 60_000,
      env: { ...process.env, RU_STATE: STATE_DIR, RU_NS_A: NS_A, RU_NS_B: NS_B, RU_IP_A: IP_A, RU_IP_B: IP_B },
    });
    this.upCalls++;
    this.lastArgs = args;
  }

  /** SIGUSR1 to linkem (pid from its pidfile, checked to be linkem) and the line it appends. */
  async counters(timeoutMs = 3000): Promise<LinkCounters> {
    const pid = linkemPid();
    if (pid === undefined) throw new Error('linkem is not running');
    const file = path.join(STATE_DIR, 'linkem.stats');
    const lastSnap = (): LinkCounters | undefined => {
      const lines = readFileSync(file, 'utf8').trim().split('\n').filter((l) => l !== '');
      const last = lines[lines.length - 1];
      return last === undefined ? undefined : (JSON.parse(last) as LinkCounters);
    };
    const before = lastSnap()?.snap ?? 0;
    process.kill(pid, 'SIGUSR1');
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const snap = lastSnap();
      if (snap !== undefined && snap.snap > before) return snap;
      await sleep(10);
    }
    throw new Error(`linkem (pid ${pid}) wrote no counters within ${timeoutMs} ms`);
  }

  sysctl(ns: string, key: string): string {
    return execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-n', key], { encoding: 'utf8', timeout: 5000 }).trim().replace(/\s+/g, ' ');
  }

  setSysctl(ns: string, key: string, value: string): void {
    execFileSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `${key}=${value}`], { stdio: 'ignore', timeout: 5000 });
  }

  /**
   * In a namespace other than the initial one, net.ipv4.tcp_congestion_control may only be set to
   * an algorithm listed in net.ipv4.tcp_allowed_congestion_control (EPERM otherwise), and that
   * list is global: it holds the initial namespace's default and reno. So to run CUBIC in the
   * namespaces when the machine's default is BBR, `name` is added to the list for the run, and the
   * list is restored at teardown (also by the watchdog). Adding to it only widens what a socket
   * may choose with TCP_CONGESTION; no default changes outside the namespaces.
   */
  allowCongestionControl(name: string): void {
    const file = '/proc/sys/net/ipv4/tcp_allowed_congestion_control';
    const allowed = readFileSync(file, 'utf8').trim();
    if (allowed.split(/\s+/).includes(name)) return;
    if (!existsSync(this.allowedBackup)) writeFileSync(this.allowedBackup, `${allowed}\n`);
    writeFileSync(file, `${allowed} ${name}`);
    this.allowedAdded.push(name);
  }

  /** What allowCongestionControl added to the global list (restored at teardown). */
  readonly allowedAdded: string[] = [];

  private restoreAllowed(): void {
    if (!existsSync(this.allowedBackup)) return;
    try {
      writeFileSync('/proc/sys/net/ipv4/tcp_allowed_congestion_control', readFileSync(this.allowedBackup, 'utf8').trim());
      rmSync(this.allowedBackup, { force: true });
    } catch (error) {
      process.stderr.write(`could not restore tcp_allowed_congestion_control: ${error instanceof Error ? error.message : String(error)}\n`);
    }
  }

  /** Runs a command inside a namespace (bounded), returning its stdout, or undefined on failure. */
  exec(ns: string, command: readonly string[]): string | undefined {
    try {
      return execFileSync('ip', ['netns', 'exec', ns, ...command], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
    } catch {
      return undefined;
    }
  }

  /** Tears the path down (idempotent). */
  downSync(): void {
    if (current !== this) return;
    current = undefined;
    this.downScript();
    this.restoreAllowed();
    rmSync(this.ownerFile, { force: true });
    if (this.watchdog?.pid !== undefined && this.watchdog.exitCode === null) {
      try {
        process.kill(this.watchdog.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }

  private downScript(): void {
    try {
      execFileSync(path.join(LINKEM_DIR, 'netns-down.sh'), [], {
        stdio: 'ignore',
        timeout: 30_000,
        env: { ...process.env, RU_STATE: STATE_DIR, RU_NS_A: NS_A, RU_NS_B: NS_B },
      });
    } catch (error) {
      process.stderr.write(`netns-down.sh failed: ${error instanceof Error ? error.message : String(error)}\n`);
    }
  }

  /**
   * A SIGKILL leaves no chance to clean up, so a detached shell polls this pid once a second and
   * tears the path down when it is gone, if the owner file still names it (a normal end removes
   * the file and kills the watchdog first). It gives up after `maxSeconds` in any case.
   */
  private startWatchdog(maxSeconds: number): void {
    const script = [
      'owner=$1; down=$2; file=$3; end=$(( $(date +%s) + $4 ))',
      'while kill -0 "$owner" 2>/dev/null; do [ "$(date +%s)" -lt "$end" ] || exit 0; sleep 1; done',
      '[ "$(cat "$file" 2>/dev/null)" = "$owner" ] || exit 0',
      '"$down" >/dev/null 2>&1; rm -f "$file"',
      '[ -f "$5" ] && cat "$5" > /proc/sys/net/ipv4/tcp_allowed_congestion_control && rm -f "$5"',
    ].join('\n');
    const args = [String(process.pid), path.join(LINKEM_DIR, 'netns-down.sh'), this.ownerFile, String(Math.ceil(maxSeconds)), this.allowedBackup];
    const child = spawn('sh', ['-c', script, 'linkem-watchdog', ...args], {
      detached: true,
      stdio: 'ignore',
      env: { ...process.env, RU_STATE: STATE_DIR, RU_NS_A: NS_A, RU_NS_B: NS_B },
    });
    child.unref();
    this.watchdog = child;
  }
}
