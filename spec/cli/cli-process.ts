/**
 * Shared by the CLI specs: builds dist/ when stale, spawns `node dist/cli/main.js …` as a
 * child process whose output can be awaited, and kills every child still running after each test.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { ensureBuilt } from '../hardening/helpers';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '../..');
export const MAIN = join(ROOT, 'dist', 'cli', 'main.js');
export const HOST = '127.0.0.1';

/** Makes sure dist/ is current (a beforeAll), and kills children left running (an afterEach). */
export function useBuiltCli(): void {
  // npm test has just built dist/: rebuild only when it is missing or older than lib/ (a rebuild
  // while another suite runs the CLI would race with it under parallel jest workers).
  beforeAll(() => ensureBuilt(), 120_000);
  afterEach(() => {
    for (const child of running) if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
    running.clear();
  });
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

const running = new Set<ChildProcess>();

export function within<T>(promise: Promise<T>, ms: number, label: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${label()}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** One CLI process, with its output so far. */
export class Cli {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<Exit>;
  private readonly waiters = new Set<() => void>();

  constructor(args: readonly string[], options: { readonly cwd?: string; readonly stdin?: boolean } = {}) {
    const stdin = options.stdin ?? true;
    this.child = spawn(process.execPath, [MAIN, ...args], { cwd: options.cwd ?? ROOT, stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    running.add(this.child);
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => this.append('stdout', chunk));
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => this.append('stderr', chunk));
    this.child.stdin?.on('error', () => undefined); // the process may exit before reading all of it
    this.exited = new Promise((resolveExit) => {
      this.child.on('close', (code, signal) => {
        running.delete(this.child);
        resolveExit({ code, signal });
      });
    });
  }

  write(text: string): void {
    this.child.stdin!.write(text);
  }

  end(text = ''): void {
    this.child.stdin!.end(text);
  }

  /** Resolves with the first match of `pattern` in stdout or stderr; rejects after `ms`. */
  waitFor(stream: 'stdout' | 'stderr', pattern: RegExp, ms = 5_000): Promise<RegExpMatchArray> {
    return within(
      new Promise<RegExpMatchArray>((resolveMatch) => {
        const check = (): void => {
          const match = this[stream].match(pattern);
          if (match === null) return;
          this.waiters.delete(check);
          resolveMatch(match);
        };
        this.waiters.add(check);
        check();
      }),
      ms,
      () => `${pattern} on ${stream}; stdout: ${JSON.stringify(this.stdout)}, stderr: ${JSON.stringify(this.stderr)}`,
    );
  }

  /** Resolves with the exit; rejects after `ms`. */
  exit(ms = 10_000): Promise<Exit> {
    return within(this.exited, ms, () => `exit; stdout: ${JSON.stringify(this.stdout.slice(-2000))}, stderr: ${JSON.stringify(this.stderr.slice(-2000))}`);
  }

  private append(stream: 'stdout' | 'stderr', chunk: string): void {
    this[stream] += chunk;
    for (const check of [...this.waiters]) check();
  }
}
