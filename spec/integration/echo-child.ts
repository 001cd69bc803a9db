/**
 * An echoing listener in a child Node process (spec/fixtures/echo-listener.js on the built
 * library, dist/), for specs whose peer must not share this process: one killed, or one that
 * keeps answering while this process is busy. One child per test; `stop()` in afterEach.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { within } from './helpers';

const ROOT = join(__dirname, '..', '..');
const FIXTURE = join(ROOT, 'spec', 'fixtures', 'echo-listener.js');

export class EchoChild {
  private child: ChildProcess | undefined;
  /** Settles once the child exited and its stdio closed (no handle left behind). */
  exited: Promise<void> | undefined;

  /** Starts the child; resolves with its port once it printed it. */
  async start(pingInterval: number): Promise<{ port: number; pid: number }> {
    const proc = spawn(process.execPath, [FIXTURE, String(pingInterval)], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
    this.child = proc;
    this.exited = new Promise<void>((resolve) => proc.once('close', () => resolve()));
    const lines = createInterface({ input: proc.stdout! });
    const first = new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      proc.once('exit', (code, signal) => reject(new Error(`echo-listener exited early (code ${code}, signal ${signal})`)));
    });
    const line = await within(first, 10_000, 'echo-listener printing its port');
    const { port } = JSON.parse(line) as { port: number };
    return { port, pid: proc.pid! };
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await this.exited;
    this.child = undefined;
    this.exited = undefined;
  }
}
