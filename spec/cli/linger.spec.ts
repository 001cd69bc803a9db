/**
 * `connect` at the end of stdin, as a user of `nc` expects: replies still in flight when its own
 * messages are acknowledged are printed before it closes (`--linger`), and `--linger 0` keeps the
 * close-as-soon-as-acknowledged behaviour.
 */
import { firstValueFrom, ReplaySubject, Subscription, timer } from 'rxjs';
import { listen } from '../../lib/index';
import { Cli, HOST, useBuiltCli } from './cli-process';

jest.setTimeout(60_000);
useBuiltCli();

const subscriptions = new Subscription();
afterAll(() => subscriptions.unsubscribe());

/**
 * A listener that acknowledges every message at once (the library does) but answers each one
 * only `delays[i]` ms after it arrived: a service that takes time to reply, so the replies are
 * certainly in flight when the client's own lines are acknowledged.
 */
async function startSlowReplier(reply: (message: string) => readonly [number, string][]): Promise<number> {
  const port$ = new ReplaySubject<number>(1);
  subscriptions.add(
    listen({ host: HOST, port: 0, onListening: (address) => port$.next(address.port) }).subscribe((connection) => {
      connection.messages$.subscribe((message) => {
        for (const [delay, text] of reply(Buffer.from(message).toString())) {
          subscriptions.add(timer(delay).subscribe(() => connection.send$.next(Buffer.from(text))));
        }
      });
    }),
  );
  return firstValueFrom(port$);
}

async function startEcho(): Promise<number> {
  const cli = new Cli(['echo', '--host', HOST, '--port', '0']);
  const match = await cli.waitFor('stdout', /^listening 127\.0\.0\.1:(\d+)\n/, 15_000);
  return Number(match[1]);
}

test('20 clients at once, each piping 2 lines and closing stdin, all get both echoes back', async () => {
  const port = await startEcho();
  // All at once, so that the echo replies are still in flight when each client's own lines are
  // acknowledged: without lingering, most clients closed before their replies arrived.
  const clients = Array.from({ length: 20 }, (_, i) => {
    const cli = new Cli(['connect', HOST, String(port)]);
    cli.end(`a${i}\nb${i}\n`);
    return cli;
  });
  const results = await Promise.all(clients.map(async (cli, i) => ({ i, exit: await cli.exit(40_000), stdout: cli.stdout, stderr: cli.stderr })));
  for (const { i, exit, stdout, stderr } of results) {
    expect({ i, exit, stdout, stderr }).toEqual({ i, exit: { code: 0, signal: null }, stdout: `a${i}\nb${i}\n`, stderr: '' });
  }
});

test('a reply that comes 100 ms after the acknowledgement is printed before connect exits (default linger)', async () => {
  const port = await startSlowReplier((text) => [[100, `re: ${text}`]]);
  const cli = new Cli(['connect', HOST, String(port)]);
  cli.end('question\n');
  expect(await cli.exit(15_000)).toEqual({ code: 0, signal: null });
  expect(cli.stdout).toBe('re: question\n');
  expect(cli.stderr).toBe('');
});

test('the linger restarts with every message received: replies 400 ms apart, --linger 1000, all printed', async () => {
  // 1200 ms from the acknowledgement to the last reply: more than one linger, but no gap is.
  const port = await startSlowReplier((text) => [
    [400, `${text} 1`],
    [800, `${text} 2`],
    [1200, `${text} 3`],
  ]);
  const cli = new Cli(['connect', HOST, String(port), '--linger', '1000']);
  cli.end('q\n');
  expect(await cli.exit(15_000)).toEqual({ code: 0, signal: null });
  expect(cli.stdout).toBe('q 1\nq 2\nq 3\n');
});

test('--linger 0 closes as soon as everything sent is acknowledged, without waiting for a late reply', async () => {
  const port = await startSlowReplier((text) => [[1000, `re: ${text}`]]);
  const prompt = new Cli(['connect', HOST, String(port), '--linger', '0']);
  const lingering = new Cli(['connect', HOST, String(port), '--linger', '3000']);
  prompt.end('x\n');
  lingering.end('y\n');
  expect(await prompt.exit(15_000)).toEqual({ code: 0, signal: null });
  expect({ stdout: prompt.stdout, stderr: prompt.stderr }).toEqual({ stdout: '', stderr: '' });
  // The same late reply, with a linger longer than its delay, is printed.
  expect(await lingering.exit(15_000)).toEqual({ code: 0, signal: null });
  expect(lingering.stdout).toBe('re: y\n');
});

test('--linger must be an integer of 0 or more', async () => {
  for (const value of ['-1', 'soon']) {
    const cli = new Cli(['connect', HOST, '7000', `--linger=${value}`]);
    cli.end();
    expect(await cli.exit()).toEqual({ code: 2, signal: null });
    expect(cli.stderr).toMatch(/--linger/);
  }
});
