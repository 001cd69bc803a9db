/**
 * `rx-rudp echo --workers N` and `rx-rudp receive --workers N`: the built CLI as a cluster's
 * primary, its workers sharing one port of 127.0.0.1. Where this Node cannot share a port, the
 * command must fail with exit code 1 and say why, not run on one core.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstValueFrom } from 'rxjs';
import { open, type Connection } from '../../lib/index';
import { reusePortUnavailable } from '../../lib/node/reuse-port';
import { Cli, HOST, useBuiltCli, within } from './cli-process';

jest.setTimeout(60_000);
useBuiltCli();

const canShare = reusePortUnavailable() === undefined;
const connections: Connection[] = [];
let work: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'rx-rudp-workers-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));
afterEach(() => connections.splice(0).forEach((c) => c.close()));

/** The worker processes of a primary (its children), by PID. */
function childrenOf(pid: number): number[] {
  let out = '';
  try {
    out = execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' });
  } catch {
    // ps exits 1 when there are none.
  }
  return out.split('\n').map((s) => Number(s.trim())).filter((n) => n > 0);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function echo(connection: Connection, text: string): Promise<string> {
  const reply = firstValueFrom(connection.messages$);
  connection.send$.next(Buffer.from(text));
  return Buffer.from(await within(reply, 5000, () => `the echo of '${text}'`)).toString();
}

test('--workers 0 and --once with --workers are usage errors', async () => {
  for (const args of [['echo', '--workers', '0'], ['receive', '--workers', '2', '--once']]) {
    const cli = new Cli(args, { stdin: false });
    const exit = await cli.exit();
    expect(exit.code).toBe(2);
    expect(cli.stderr).toMatch(/invalid value for --workers: '0' \(expected an integer from 1 to 1024\)|--once serves one connection in one process: it cannot be combined with --workers/);
  }
});

if (!canShare) {
  test(`on Node ${process.versions.node}: echo --workers 2 exits 1, saying which Node it needs`, async () => {
    const cli = new Cli(['echo', '--workers', '2', '--host', HOST, '--port', '0'], { stdin: false });
    const exit = await cli.exit();
    expect(exit.code).toBe(1);
    expect(cli.stderr).toMatch(/^rx-rudp echo: cannot run 2 workers on one port: Node .* needs Node 22\.12, 23\.1 or later\): upgrade Node, or run a single listener\n$/);
    expect(cli.stdout).toBe('');
  });
} else {
  test('echo --workers 2: two processes echo on one port; one killed is reported and the rest serve; SIGTERM stops all', async () => {
    const cli = new Cli(['echo', '--workers', '2', '--host', HOST, '--port', '0'], { stdin: false });
    const port = Number((await cli.waitFor('stdout', /^listening 127\.0\.0\.1:(\d+)\n/, 15_000))[1]);
    const workers = childrenOf(cli.child.pid!);
    expect(workers).toHaveLength(2);
    for (let i = 0; i < 10; i++) {
      const connection = await open({ host: HOST, port });
      connections.push(connection);
      expect(await echo(connection, `hello ${i}`)).toBe(`hello ${i}`);
    }
    process.kill(workers[0]!, 'SIGKILL');
    await cli.waitFor('stderr', new RegExp(`^rx-rudp echo: worker \\d \\(pid ${workers[0]}\\) was killed by SIGKILL: its connections are lost; 1 of 2 workers still serve\\n`));
    const late = await open({ host: HOST, port });
    connections.push(late);
    expect(await echo(late, 'after the kill')).toBe('after the kill');
    process.kill(cli.child.pid!, 'SIGTERM');
    expect(await cli.exit()).toEqual({ code: 0, signal: null });
    expect(workers.filter(alive)).toEqual([]);
  });

  test('receive --workers 2: two senders at once, both files verified', async () => {
    const out = mkdtempSync(join(work, 'out-'));
    const src = mkdtempSync(join(work, 'src-'));
    const cli = new Cli(['receive', '--workers', '2', '--host', HOST, '--port', '0', '--out', out], { stdin: false });
    const port = Number((await cli.waitFor('stdout', /^listening 127\.0\.0\.1:(\d+)\n/, 15_000))[1]);
    const files = ['a.bin', 'b.bin'].map((name) => {
      const data = randomBytes(512 * 1024);
      writeFileSync(join(src, name), data);
      return { name, source: join(src, name), sha256: createHash('sha256').update(data).digest('hex') };
    });
    const senders = files.map((f) => new Cli(['send', HOST, String(port), f.source], { stdin: false }));
    for (const sender of senders) expect((await sender.exit(20_000)).code).toBe(0);
    for (const f of files) {
      await cli.waitFor('stdout', new RegExp(`received ${f.name.replace('.', '\\.')}: .* SHA-256 ${f.sha256} verified`));
      expect(createHash('sha256').update(readFileSync(join(out, f.name))).digest('hex')).toBe(f.sha256);
    }
    process.kill(cli.child.pid!, 'SIGTERM');
    expect(await cli.exit()).toEqual({ code: 0, signal: null });
  });
}
