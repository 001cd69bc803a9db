/**
 * The `rx-rudp` CLI as users run it: the built `dist/cli/main.js` in child processes, over real
 * loopback sockets. Every child is killed (by its own PID) after each test; every wait is bounded.
 */
import { createSocket } from 'node:dgram';
import { firstValueFrom, interval, map, merge, Subscription, switchMap, take, tap, ignoreElements, ReplaySubject } from 'rxjs';
import { connect, listen } from '../../lib/index';
import { Cli, HOST, useBuiltCli, type Exit } from './cli-process';

jest.setTimeout(20_000);
useBuiltCli();

const subscriptions = new Subscription();

afterAll(() => subscriptions.unsubscribe());

/** Runs the CLI to its end with `stdin` as input. */
async function run(args: readonly string[], stdin = ''): Promise<Exit & { stdout: string; stderr: string }> {
  const cli = new Cli(args);
  cli.end(stdin);
  const exit = await cli.exit();
  return { ...exit, stdout: cli.stdout, stderr: cli.stderr };
}

/** Starts `rx-rudp echo` on a free loopback port; resolves once it listens. */
async function startEcho(...flags: string[]): Promise<{ cli: Cli; port: number }> {
  const cli = new Cli(['echo', '--host', HOST, '--port', '0', ...flags]);
  const match = await cli.waitFor('stdout', /^listening 127\.0\.0\.1:(\d+)\n/);
  return { cli, port: Number(match[1]) };
}

/** A loopback UDP port that nothing listens on (bound, read, closed). */
async function unusedPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolveBind) => socket.bind(0, HOST, resolveBind));
  const { port } = socket.address();
  await new Promise<void>((resolveClose) => socket.close(resolveClose));
  return port;
}

describe('help and usage errors', () => {
  test('--help prints the top-level usage with the commands and exit codes, exit 0', async () => {
    for (const flag of ['--help', '-h']) {
      const result = await run([flag]);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^Usage: rx-rudp <command>/);
      expect(result.stdout).toMatch(/echo/);
      expect(result.stdout).toMatch(/connect/);
      expect(result.stdout).toMatch(/0 +success/);
      expect(result.stdout).toMatch(/1 +connection failure/);
      expect(result.stdout).toMatch(/2 +usage error/);
      expect(result.stderr).toBe('');
    }
  });

  test('each command has its --help, listing the protocol flags, exit 0', async () => {
    const echo = await run(['echo', '--help']);
    expect(echo.code).toBe(0);
    expect(echo.stdout).toMatch(/^Usage: rx-rudp echo/);
    for (const flag of ['--host', '--port', '--max-connections', '--delivery-timeout', '--ping-interval', '--ping-packet-count', '--connect-timeout', '--max-datagram-size', '--receive-window', '--max-message-size']) {
      expect(echo.stdout).toContain(flag);
    }
    const connectHelp = await run(['connect', '-h']);
    expect(connectHelp.code).toBe(0);
    expect(connectHelp.stdout).toMatch(/^Usage: rx-rudp connect HOST PORT/);
    expect(connectHelp.stdout).toContain('--connect-timeout');
    expect(connectHelp.stdout).not.toContain('--max-connections');
    const viaHelp = await run(['help', 'connect']);
    expect(viaHelp.code).toBe(0);
    expect(viaHelp.stdout).toBe(connectHelp.stdout);
  });

  test('an unknown or missing command is a usage error: exit 2, message and hint on stderr', async () => {
    const unknown = await run(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toBe('');
    expect(unknown.stderr).toBe("rx-rudp: unknown command 'frobnicate'; see 'rx-rudp --help'\n");
    const missing = await run([]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/missing command/);
  });

  test('a non-integer option value is a usage error naming the flag, exit 2', async () => {
    const result = await run(['connect', HOST, '7000', '--ping-interval', 'abc']);
    expect(result.code).toBe(2);
    expect(result.stderr).toBe("rx-rudp connect: invalid value for --ping-interval: 'abc' (expected an integer); see 'rx-rudp connect --help'\n");
    const echo = await run(['echo', '--max-connections', '1.5']);
    expect(echo.code).toBe(2);
    expect(echo.stderr).toMatch(/--max-connections/);
  });

  test("a value the library rejects (InvalidOptionError) is a usage error naming the flag, exit 2", async () => {
    const result = await run(['echo', '--ping-interval', '0']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^rx-rudp echo: invalid value for --ping-interval: '0' \(expected an integer from 1 to \d+\); see 'rx-rudp echo --help'\n$/);
    const datagram = await run(['connect', HOST, '7000', '--max-datagram-size=100']);
    expect(datagram.code).toBe(2);
    expect(datagram.stderr).toMatch(/^rx-rudp connect: invalid value for --max-datagram-size: '100' \(expected an integer from 576 to 65507\)/);
    const port = await run(['echo', '--port', '70000']);
    expect(port.code).toBe(2);
    expect(port.stderr).toMatch(/^rx-rudp echo: invalid value for --port: '70000' \(expected an integer from 0 to 65535\)/);
  });

  test('unknown flags, missing arguments and stray arguments are usage errors, exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['echo', '--bogus'], /--bogus/],
      [['echo', '--port'], /--port/],
      [['echo', 'stray'], /stray/],
      [['connect'], /missing HOST and PORT/],
      [['connect', HOST], /missing PORT/],
      [['connect', HOST, 'http'], /PORT/],
      [['connect', HOST, '0'], /PORT/],
      [['connect', HOST, '7000', 'extra'], /extra/],
      [['connect', HOST, '7000', '--max-connections', '3'], /--max-connections/],
    ];
    for (const [args, pattern] of cases) {
      const result = await run(args);
      expect({ args, code: result.code }).toEqual({ args, code: 2 });
      expect(result.stderr).toMatch(pattern);
      // One line, in the one style.
      expect(result.stderr).toMatch(new RegExp(`^rx-rudp ${args[0]}: [^\n]+; see 'rx-rudp ${args[0]} --help'\n$`));
    }
  });
});

describe('usage errors in one voice', () => {
  // Every usage error: "rx-rudp CMD: <what is wrong>; see 'rx-rudp CMD --help'", one line, exit 2,
  // in our words (never parseArgs's), naming flags as typed, with the nearest name for a near miss.
  const cases: [string[], string][] = [
    [['conect', HOST, '7000'], "rx-rudp: unknown command 'conect' (did you mean connect?); see 'rx-rudp --help'"],
    [['help', 'recieve'], "rx-rudp: unknown command 'recieve' (did you mean receive?); see 'rx-rudp --help'"],
    [['--verbose'], "rx-rudp: unknown option '--verbose' (a command comes first); see 'rx-rudp --help'"],
    [['echo', '--prot', '7000'], "rx-rudp echo: unknown option '--prot' (did you mean --port?); see 'rx-rudp echo --help'"],
    [['connect', HOST, '7000', '--conect-timeout', '300'], "rx-rudp connect: unknown option '--conect-timeout' (did you mean --connect-timeout?); see 'rx-rudp connect --help'"],
    [['connect', HOST, '7000', '--delivery'], "rx-rudp connect: unknown option '--delivery' (did you mean --delivery-timeout?); see 'rx-rudp connect --help'"],
    [['connect', HOST, '7000', '--frobnicate'], "rx-rudp connect: unknown option '--frobnicate'; see 'rx-rudp connect --help'"],
    [['connect', HOST, '7000', '-x'], "rx-rudp connect: unknown option '-x'; see 'rx-rudp connect --help'"],
    // A negative number is the flag's value (parseArgs called it "ambiguous"), out of range.
    [['connect', HOST, '7000', '--delivery-timeout', '-5'], "rx-rudp connect: invalid value for --delivery-timeout: '-5' (expected an integer from 1 to 600000); see 'rx-rudp connect --help'"],
    [['echo', '--port', '--host', HOST], "rx-rudp echo: missing value for --port (before '--host'; a value starting with '-' is written --port=VALUE); see 'rx-rudp echo --help'"],
    [['echo', '--port'], "rx-rudp echo: missing value for --port; see 'rx-rudp echo --help'"],
    [['receive', '--once=yes'], "rx-rudp receive: --once takes no value; see 'rx-rudp receive --help'"],
    [['echo', 'stray'], "rx-rudp echo: unexpected argument 'stray'; see 'rx-rudp echo --help'"],
    // host:port where two arguments are expected.
    [['connect', 'localhost:7000'], "rx-rudp connect: missing PORT (did you mean 'rx-rudp connect localhost 7000'?); see 'rx-rudp connect --help'"],
    [['connect', '[::1]:7000'], "rx-rudp connect: missing PORT (did you mean 'rx-rudp connect ::1 7000'?); see 'rx-rudp connect --help'"],
    [['send', 'localhost:7000', 'a.bin', 'b.bin'], "rx-rudp send: missing PORT (did you mean 'rx-rudp send localhost 7000 a.bin b.bin'?); see 'rx-rudp send --help'"],
    // A port out of range is worded alike wherever it is given (positional or flag).
    [['connect', HOST, '0'], "rx-rudp connect: invalid value for PORT: '0' (expected an integer from 1 to 65535); see 'rx-rudp connect --help'"],
    [['send', HOST, '70000', 'f'], "rx-rudp send: invalid value for PORT: '70000' (expected an integer from 1 to 65535); see 'rx-rudp send --help'"],
    [['echo', '--port', '70000'], "rx-rudp echo: invalid value for --port: '70000' (expected an integer from 0 to 65535); see 'rx-rudp echo --help'"],
    [['receive', '--port', '-1'], "rx-rudp receive: invalid value for --port: '-1' (expected an integer from 0 to 65535); see 'rx-rudp receive --help'"],
    [['demo', '--loss', '95'], "rx-rudp demo: invalid value for --loss: '95' (expected an integer from 0 to 90); see 'rx-rudp demo --help'"],
  ];
  test.each(cases)('%j', async (args, expected) => {
    const result = await run(args);
    expect({ code: result.code, stdout: result.stdout, stderr: result.stderr }).toEqual({ code: 2, stdout: '', stderr: `${expected}\n` });
  });
});

describe('echo and connect', () => {
  test('lines typed before the connection opens are buffered, then echoed in order; EOF exits 0', async () => {
    const { port } = await startEcho();
    const long = 'x'.repeat(5_000);
    // All of stdin, and its end, arrive before the handshake completes: buffered, then sent.
    const result = await run(['connect', HOST, String(port)], `hello\nworld\n${long}\n`);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`hello\nworld\n${long}\n`);
  });

  test('interactive: each line is echoed as typed; a last line without a newline counts; EOF exits 0', async () => {
    const { port } = await startEcho();
    const cli = new Cli(['connect', HOST, String(port)]);
    cli.write('one\n');
    await cli.waitFor('stdout', /^one\n$/);
    cli.write('two\r\n\n');
    await cli.waitFor('stdout', /^one\ntwo\n\n$/);
    cli.end('héllo wörld');
    const exit = await cli.exit();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(cli.stdout).toBe('one\ntwo\n\nhéllo wörld\n');
  });

  test('the echo server echoes DIRECT datagrams as DIRECT', async () => {
    const { port } = await startEcho();
    const payload = Buffer.from('direct ping');
    const echoed = await firstValueFrom(
      connect({ host: HOST, port }).pipe(
        switchMap((connection) =>
          merge(
            connection.direct$.pipe(take(1)),
            // DIRECT is unreliable: resend until the echo arrives.
            interval(20).pipe(
              tap(() => connection.sendDirect(payload)),
              ignoreElements(),
            ),
          ),
        ),
        map((data) => Buffer.from(data).toString()),
      ),
    );
    expect(echoed).toBe('direct ping');
  });

  test('a connect timeout (a peer that never answers) exits 1 with the reason on stderr', async () => {
    // A socket that swallows every datagram: no CONNECT_ACK and no ICMP refusal.
    const blackHole = createSocket("udp4");
    await new Promise<void>((resolve) => blackHole.bind(0, HOST, resolve));
    try {
      const port = blackHole.address().port;
      const result = await run(['connect', HOST, String(port), '--connect-timeout', '300'], 'lost\n');
      expect(result.code).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(new RegExp(`^rx-rudp connect: no answer from 127\\.0\\.0\\.1:${port} within 300 ms`));
      // The library's advice names its option; the CLI names the flag.
      expect(result.stderr).toMatch(/raise --connect-timeout\n$/);
      expect(result.stderr).not.toMatch(/connectTimeout/);
      expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    } finally {
      blackHole.close();
    }
  });

  test('a closed port exits 1 at once with "nothing is listening" on stderr', async () => {
    const port = await unusedPort();
    const result = await run(['connect', HOST, String(port)], 'lost\n');
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(new RegExp(`^rx-rudp connect: nothing is listening at 127\\.0\\.0\\.1:${port}`));
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  test('a refusal (echo --max-connections 0) exits 1 with the reason on stderr', async () => {
    const { port } = await startEcho('--max-connections', '0');
    const result = await run(['connect', HOST, String(port)], 'hello\n');
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^rx-rudp connect: .*refused the connection.*too many connections.*raise its --max-connections/);
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  test("a connection's abnormal end is logged by echo, which keeps serving; the client exits 1", async () => {
    const { cli: echo, port } = await startEcho('--max-message-size', '10');
    const tooLarge = await run(['connect', HOST, String(port)], 'longer than ten bytes\n');
    expect(tooLarge.code).toBe(1);
    expect(tooLarge.stderr).toMatch(/^rx-rudp connect: .*--max-message-size/);
    await echo.waitFor('stderr', /^rx-rudp echo: connection \d+ from 127\.0\.0\.1:\d+ ended: .+\n/);
    const fine = await run(['connect', HOST, String(port)], 'short\n');
    expect(fine.code).toBe(0);
    expect(fine.stdout).toBe('short\n');
    expect(echo.child.exitCode).toBeNull();
  });

  test('the peer closing normally ends connect with exit 0', async () => {
    const port$ = new ReplaySubject<number>(1);
    subscriptions.add(
      listen({ host: HOST, port: 0, onListening: (address) => port$.next(address.port) }).subscribe((connection) => {
        connection.messages$.pipe(take(1)).subscribe((message) => {
          // Echo the first message, and close once it is acknowledged.
          connection.send(message).subscribe({ complete: () => connection.close(), error: () => undefined });
        });
      }),
    );
    const port = await firstValueFrom(port$);
    const cli = new Cli(['connect', HOST, String(port)]);
    cli.write('bye\n'); // stdin stays open
    const exit = await cli.exit();
    expect(exit).toEqual({ code: 0, signal: null });
    expect(cli.stdout).toBe('bye\n');
    expect(cli.stderr).toBe('');
  });

  test('SIGTERM stops echo with exit 0, closing connections with reason 4: the client exits 1', async () => {
    const { cli: echo, port } = await startEcho();
    const client = new Cli(['connect', HOST, String(port), '--ping-interval', '200', '--ping-packet-count', '2']);
    client.write('ping\n');
    await client.waitFor('stdout', /^ping\n$/);
    process.kill(echo.child.pid!, 'SIGTERM');
    expect(await echo.exit()).toEqual({ code: 0, signal: null });
    expect(echo.stderr).toBe('');
    // The listener closed the connection with reason 4: the client is told, not left to time out.
    expect(await client.exit()).toEqual({ code: 1, signal: null });
    expect(client.stderr).toMatch(/^rx-rudp connect: .*shutting down/);
    expect(client.stderr.trimEnd().split('\n')).toHaveLength(1);
  });

  test('SIGINT stops echo with exit 0', async () => {
    const { cli: echo } = await startEcho();
    process.kill(echo.child.pid!, 'SIGINT');
    expect(await echo.exit()).toEqual({ code: 0, signal: null });
  });

  test('a port already in use makes echo exit 1 with the reason', async () => {
    const { port } = await startEcho();
    const second = await run(['echo', '--host', HOST, '--port', String(port)]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/^rx-rudp echo: cannot bind .*already in use/);
  });
});
