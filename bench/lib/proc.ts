/**
 * Child-process plumbing. A child writes JSON messages to stdout, one per line prefixed with
 * `@@` (any other output is passed through to stderr); the parent writes JSON commands to the
 * child's stdin, one per line. A child started with `--child` exits when its stdin closes (its
 * parent died) and after a hard time limit, so no benchmark process can outlive its run. The
 * parent kills every child it started, by PID, when it exits or is interrupted.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface Message {
  readonly type: string;
  readonly [key: string]: unknown;
}

const PREFIX = '@@';
const live = new Set<ChildProcess>();
let guardsInstalled = false;

function killPid(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Kills every child still running, by PID (a caller tearing down what the children live in). */
export function killAllChildren(): void {
  for (const child of live) killPid(child);
}

function installParentGuards(): void {
  if (guardsInstalled) return;
  guardsInstalled = true;
  process.on('exit', () => {
    for (const child of live) killPid(child);
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      for (const child of live) killPid(child);
      process.exit(130);
    });
  }
}

export interface SpawnOptions {
  /** Hard limit: the child is killed (by PID) after this long. */
  readonly timeoutMs: number;
  readonly env?: NodeJS.ProcessEnv;
  /** Extra arguments for node itself (before the script). */
  readonly nodeArgs?: readonly string[];
  /**
   * Run it inside this network namespace (`ip netns exec NS node …`). `ip netns exec` execs node
   * in place, so the pid spawned is node's own and killing it by pid kills the child, not a wrapper.
   */
  readonly netns?: string;
}

export class ChildError extends Error {}

/** A node child process speaking the `@@{json}` protocol. */
export class Child {
  readonly pid: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly process: ChildProcess;
  private readonly inbox: Message[] = [];
  private readonly waiters: { type: string; resolve: (m: Message) => void; reject: (e: Error) => void }[] = [];
  private failure: Error | undefined;
  private stderrTail = '';
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly label: string,
    script: string,
    args: readonly string[],
    options: SpawnOptions,
  ) {
    installParentGuards();
    // BENCH_CHILD_NODE_ARGS (e.g. '--cpu-prof --cpu-prof-dir=/tmp/prof') goes to every child's node.
    const extra = (process.env['BENCH_CHILD_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
    const nodeArgv = [...extra, ...(options.nodeArgs ?? []), script, ...args, '--child'];
    const [command, argv] = options.netns === undefined ? [process.execPath, nodeArgv] : ['ip', ['netns', 'exec', options.netns, process.execPath, ...nodeArgv]];
    const child = spawn(command, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env });
    if (child.pid === undefined) throw new ChildError(`${label}: could not spawn ${script}${options.netns === undefined ? '' : ` in ${options.netns}`}`);
    this.pid = child.pid;
    this.process = child;
    live.add(child);
    child.stdin!.on('error', () => undefined); // EPIPE when the child is gone
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (!line.startsWith(PREFIX)) {
        process.stderr.write(`[${label}] ${line}\n`);
        return;
      }
      let message: Message;
      try {
        message = JSON.parse(line.slice(PREFIX.length)) as Message;
      } catch {
        process.stderr.write(`[${label}] unparsable message: ${line}\n`);
        return;
      }
      if (message.type === 'error') this.fail(new ChildError(`${label}: ${String(message['message'])}`));
      else this.deliver(message);
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      this.stderrTail = (this.stderrTail + chunk.toString()).slice(-4000);
      if (process.env['BENCH_VERBOSE']) process.stderr.write(`[${label}] ${chunk.toString()}`);
    });
    this.timer = setTimeout(() => {
      this.fail(new ChildError(`${label}: timed out after ${options.timeoutMs} ms (killed pid ${this.pid})`));
      killPid(child);
    }, options.timeoutMs);
    this.timer.unref();
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        live.delete(child);
        clearTimeout(this.timer);
        if (this.failure === undefined) {
          const tail = this.stderrTail.trim();
          this.fail(new ChildError(`${label}: exited (code ${code}, signal ${signal}) while a message was awaited${tail ? `\n${tail}` : ''}`));
        }
        resolve({ code, signal });
      });
    });
  }

  /** The next message of this type (buffered ones first). */
  next<T extends Message = Message>(type: string, timeoutMs = 600_000): Promise<T> {
    const index = this.inbox.findIndex((m) => m.type === type);
    if (index >= 0) return Promise.resolve(this.inbox.splice(index, 1)[0] as T);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new ChildError(`${this.label}: no '${type}' message within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      const waiter = {
        type,
        resolve: (m: Message) => {
          clearTimeout(timer);
          resolve(m as T);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.push(waiter);
    });
  }

  send(command: Message): void {
    if (this.process.exitCode !== null || this.process.signalCode !== null) return;
    this.process.stdin!.write(JSON.stringify(command) + '\n');
  }

  /** Kills the child by PID (SIGKILL) and waits for it to be gone. */
  async kill(): Promise<void> {
    killPid(this.process);
    await this.exited;
  }

  /** Asks the child to exit (closes its stdin); kills it by PID if it has not after `graceMs`. */
  async stop(graceMs = 2000): Promise<void> {
    this.process.stdin!.end();
    const timer = setTimeout(() => killPid(this.process), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  private deliver(message: Message): void {
    const index = this.waiters.findIndex((w) => w.type === message.type);
    if (index >= 0) this.waiters.splice(index, 1)[0]!.resolve(message);
    else this.inbox.push(message);
  }

  private fail(error: Error): void {
    if (this.failure !== undefined) return;
    this.failure = error;
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
  }
}

// ---- child side -------------------------------------------------------------------------------

/** Sends a message to the parent (synchronous on Linux pipes, so it is out before an exit). */
export function emit(message: Message): void {
  process.stdout.write(PREFIX + JSON.stringify(message) + '\n');
}

/** True when this process was started by a `Child` (or asked to behave like one). */
export function isChild(argv: readonly string[] = process.argv): boolean {
  return argv.includes('--child');
}

/**
 * Child-side guards: report uncaught errors to the parent, exit when the parent closes stdin
 * (or dies), and exit after `timeoutMs` whatever happens. `onCommand` receives parent commands.
 */
export function childGuard(timeoutMs: number, onCommand?: (command: Message) => void): void {
  const die = (message: string, code: number): never => {
    try {
      emit({ type: 'error', message });
    } finally {
      process.exit(code);
    }
  };
  process.on('uncaughtException', (error) => die(`uncaught: ${error.stack ?? String(error)}`, 1));
  process.on('unhandledRejection', (reason) => die(`unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`, 1));
  setTimeout(() => die(`hard time limit of ${timeoutMs} ms reached`, 124), timeoutMs).unref();
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line.trim() === '') return;
    try {
      onCommand?.(JSON.parse(line) as Message);
    } catch (error) {
      die(`bad command ${line}: ${String(error)}`, 1);
    }
  });
  lines.on('close', () => process.exit(0));
}

/** Resolves when a command of this type arrives (use with `childGuard`'s onCommand). */
export class CommandBox {
  private readonly inbox: Message[] = [];
  private readonly waiters: { type: string; resolve: (m: Message) => void }[] = [];

  readonly handle = (command: Message): void => {
    const index = this.waiters.findIndex((w) => w.type === command.type);
    if (index >= 0) this.waiters.splice(index, 1)[0]!.resolve(command);
    else this.inbox.push(command);
  };

  next<T extends Message = Message>(type: string): Promise<T> {
    const index = this.inbox.findIndex((m) => m.type === type);
    if (index >= 0) return Promise.resolve(this.inbox.splice(index, 1)[0] as T);
    return new Promise<T>((resolve) => this.waiters.push({ type, resolve: (m) => resolve(m as T) }));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
