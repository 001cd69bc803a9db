/**
 * `rx-rudp send` and `rx-rudp receive` as users run them: the built `dist/cli/main.js` in child
 * processes over real loopback sockets, files in a temporary directory. Every child is killed
 * (by its own PID) after each test; every wait is bounded.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Subscription, firstValueFrom, switchMap, toArray, map, take } from 'rxjs';
import { connect, listen, type Connection } from '../../lib/index';
import { Cli as CliProcess, HOST, useBuiltCli, within, type Exit } from './cli-process';
import { Progress, formatBytes, formatClock, type ProgressOutput } from '../../lib/cli/progress';
import { CONTROL_CHANNEL, WRITTEN_STEP, checkName, decodeHeader, decodeReceiverMessage, encodeControl } from '../../lib/cli/transfer-protocol';

const MIB = 1024 * 1024;

jest.setTimeout(30_000);
useBuiltCli();

let work: string;

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'rx-rudp-transfer-'));
});

afterAll(() => rmSync(work, { recursive: true, force: true }));

const subscriptions = new Subscription();

afterAll(() => subscriptions.unsubscribe());

/** The CLI, run in the test's work directory with no stdin. */
class Cli extends CliProcess {
  constructor(args: readonly string[]) {
    super(args, { cwd: work, stdin: false });
  }
}

async function run(args: readonly string[], ms = 10_000): Promise<Exit & { stdout: string; stderr: string }> {
  const cli = new Cli(args);
  const exit = await cli.exit(ms);
  return { ...exit, stdout: cli.stdout, stderr: cli.stderr };
}

/** A fresh directory under the test's work directory. */
let dirs = 0;
function freshDir(label: string): string {
  const dir = join(work, `${label}-${++dirs}`);
  mkdirSync(dir);
  return dir;
}

/** Starts `rx-rudp receive` on a free loopback port; resolves once it listens. */
async function startReceiver(out: string, ...flags: string[]): Promise<{ cli: Cli; port: number }> {
  const cli = new Cli(['receive', '--host', HOST, '--port', '0', '--out', out, ...flags]);
  const match = await cli.waitFor('stdout', /^listening 127\.0\.0\.1:(\d+)\n/);
  return { cli, port: Number(match[1]) };
}

/**
 * Writes `size` deterministic pseudo-random bytes (AES-128-CTR keystream of `seed`) to `path`,
 * 1 MiB at a time; returns their SHA-256.
 */
function writeSeededFile(path: string, size: number, seed: number): string {
  const key = Buffer.alloc(16);
  key.writeUInt32BE(seed, 0);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const hash = createHash('sha256');
  const zeros = Buffer.alloc(MIB);
  const fd = openSync(path, 'w');
  try {
    for (let written = 0; written < size; ) {
      const n = Math.min(MIB, size - written);
      const chunk = cipher.update(zeros.subarray(0, n));
      hash.update(chunk);
      writeSync(fd, chunk);
      written += n;
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: MIB })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The lines of `stderr` that report an error (progress lines aside). */
function errorsOf(stderr: string): string[] {
  return stderr.split('\n').filter((line) => /^rx-rudp( [a-z]+)?: /.test(line));
}

/** VmHWM (peak resident set) of a live process, in bytes; undefined when it cannot be read. */
function peakResident(pid: number): number | undefined {
  try {
    const match = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmHWM:\s+(\d+) kB/m);
    return match === null ? undefined : Number(match[1]) * 1024;
  } catch {
    return undefined;
  }
}

describe('send and receive', () => {
  test('256 MiB on loopback: SHA-256 verified, and the receiver stays below 200 MiB resident', async () => {
    const source = join(freshDir('src'), 'big.bin');
    const expected = writeSeededFile(source, 256 * MIB, 256);
    const out = freshDir('out');
    const { cli: receiver, port } = await startReceiver(out, '--once');
    // Sample the receiver's peak RSS from outside too (VmHWM only grows: the last sample is the peak so far).
    let sampled = 0;
    const sampler = setInterval(() => (sampled = Math.max(sampled, peakResident(receiver.child.pid!) ?? 0)), 50);
    const sender = new Cli(['send', HOST, String(port), source]);
    const [sent, received] = await Promise.all([sender.exit(120_000), receiver.exit(120_000)]).finally(() => clearInterval(sampler));
    expect({ sent, stderr: sent.code === 0 ? '' : sender.stderr }).toEqual({ sent: { code: 0, signal: null }, stderr: '' });
    expect(received).toEqual({ code: 0, signal: null });

    expect(readdirSync(out)).toEqual(['big.bin']);
    expect(await sha256File(join(out, 'big.bin'))).toBe(expected);
    expect(sender.stdout).toContain(`sent big.bin: 256.00 MiB in `);
    expect(sender.stdout).toContain(`SHA-256 ${expected} verified by the receiver`);
    expect(receiver.stdout).toContain(`SHA-256 ${expected} verified`);
    // Both summaries carry the connection's statistics.
    for (const cli of [sender, receiver]) {
      expect(cli.stdout).toMatch(/^connection: round trip .* ms smoothed, RTO/m);
      expect(cli.stdout).toMatch(/^ {2}sent: +\d+ messages, \d+ DATA packets \(\d+ retransmitted/m);
      expect(cli.stdout).toMatch(/^ {2}received: +\d+ messages/m);
    }
    // Not a TTY: plain progress lines, one per 10 %, on both sides; nothing else.
    expect(sender.stderr).toMatch(/^big\.bin: 50% \(128\.00 MiB of 256\.00 MiB, [\d.]+ MiB\/s, ETA \d+:\d\d\)$/m);
    expect(errorsOf(sender.stderr)).toEqual([]);
    expect(errorsOf(receiver.stderr)).toEqual([]);
    expect(receiver.stderr).toMatch(/^big\.bin: 50% \(128\.00 MiB of 256\.00 MiB, [\d.]+ MiB\/s, ETA \d+:\d\d\)$/m);
    expect(receiver.stderr).toMatch(/^big\.bin: 100% /m);

    const reported = Number(receiver.stdout.match(/^peak memory: ([\d.]+) MiB resident/m)![1]) * MIB;
    const peak = Math.max(reported, sampled);
    expect(peak).toBeGreaterThan(10 * MIB); // the measurement measured something
    expect(peak).toBeLessThan(200 * MIB);
  }, 180_000);

  test('several files on one connection, an empty one included; each verified, no .part left', async () => {
    const src = freshDir('src');
    const files: [string, number][] = [['a.bin', 3 * MIB + 17], ['empty', 0], ['one byte', 1], ['ünïcødé.txt', 100_000]];
    const expected = new Map(files.map(([name, size], i) => [name, writeSeededFile(join(src, name), size, 10 + i)]));
    const out = freshDir('out');
    const { cli: receiver, port } = await startReceiver(out, '--once');
    const sender = await run(['send', HOST, String(port), ...files.map(([name]) => join(src, name))]);
    expect(errorsOf(sender.stderr)).toEqual([]);
    expect(sender.code).toBe(0);
    expect(await receiver.exit()).toEqual({ code: 0, signal: null });
    expect(readdirSync(out).sort()).toEqual(files.map(([name]) => name).sort());
    for (const [name] of files) {
      expect(await sha256File(join(out, name))).toBe(expected.get(name));
      expect(sender.stdout).toContain(`sent ${name}: `);
      expect(receiver.stdout).toContain(`received ${name}: `);
    }
    expect(sender.stdout).toMatch(/^sent 4 files to 127\.0\.0\.1:\d+: 3\.10 MiB in /m);
    expect(receiver.stdout).toMatch(/^received 4 files from 127\.0\.0\.1:\d+: 3\.10 MiB in .*every one verified by SHA-256$/m);
    expect(receiver.stdout).toMatch(/^peak memory: [\d.]+ MiB resident/m);
  });

  test('without --once the receiver serves sender after sender, replacing a file of the same name; SIGTERM exits 0', async () => {
    const src = freshDir('src');
    const out = freshDir('out');
    writeFileSync(join(out, 'note.txt'), 'old contents');
    const { cli: receiver, port } = await startReceiver(out);
    for (const text of ['first', 'second']) {
      writeFileSync(join(src, 'note.txt'), text);
      const sender = await run(['send', HOST, String(port), join(src, 'note.txt')]);
      expect(sender.code).toBe(0);
      expect(readFileSync(join(out, 'note.txt'), 'utf8')).toBe(text);
    }
    await receiver.waitFor('stdout', /received 1 file from [\s\S]*received 1 file from .*\n(.*\n){3}peak memory/);
    process.kill(receiver.child.pid!, 'SIGTERM');
    expect(await receiver.exit()).toEqual({ code: 0, signal: null });
    expect(errorsOf(receiver.stderr)).toEqual([]);
    expect(readdirSync(out)).toEqual(['note.txt']);
  });

  test('a name the receiver cannot write (a directory is in the way): both exit 1 with the reason, no .part left', async () => {
    const src = freshDir('src');
    writeSeededFile(join(src, 'taken'), 2 * MIB, 3);
    const out = freshDir('out');
    mkdirSync(join(out, 'taken'));
    const { cli: receiver, port } = await startReceiver(out, '--once');
    const sender = await run(['send', HOST, String(port), join(src, 'taken')]);
    expect(sender.code).toBe(1);
    expect(sender.stderr).toMatch(/^rx-rudp send: the receiver refused taken: cannot rename .*taken\.part to .*taken: /m);
    expect(errorsOf(sender.stderr)).toHaveLength(1);
    expect(sender.stdout).toMatch(/^sent 0 of 1 files to /m);
    expect(await receiver.exit()).toEqual({ code: 1, signal: null });
    expect(receiver.stderr).toMatch(/^rx-rudp receive: from 127\.0\.0\.1:\d+: taken: cannot rename .* \(partial file deleted\)$/m);
    expect(receiver.stdout).toMatch(/^received 0 files from .*failed: taken: cannot rename/m);
    expect(readdirSync(out)).toEqual(['taken']);
  });

  test('the sender killed mid-file: the receiver deletes the partial file and exits 1', async () => {
    const src = freshDir('src');
    writeSeededFile(join(src, 'killed.bin'), 128 * MIB, 4);
    const out = freshDir('out');
    const { cli: receiver, port } = await startReceiver(out, '--once', '--ping-interval', '100', '--ping-packet-count', '3');
    const sender = new Cli(['send', HOST, String(port), join(src, 'killed.bin')]);
    await receiver.waitFor('stderr', /^killed\.bin: 10% /m, 20_000);
    expect(existsSync(join(out, 'killed.bin.part'))).toBe(true);
    process.kill(sender.child.pid!, 'SIGKILL');
    expect(await receiver.exit()).toEqual({ code: 1, signal: null });
    expect(receiver.stderr).toMatch(/^rx-rudp receive: from 127\.0\.0\.1:\d+: killed\.bin: incomplete: the connection failed: peer silent .* after \d+ of 134217728 bytes \(partial file deleted\)$/m);
    expect(readdirSync(out)).toEqual([]);
  });

  test('the sender interrupted (SIGINT) mid-file exits 130; its normal close leaves the receiver with no file, exit 1', async () => {
    const src = freshDir('src');
    writeSeededFile(join(src, 'stopped.bin'), 128 * MIB, 5);
    const out = freshDir('out');
    const { cli: receiver, port } = await startReceiver(out, '--once');
    const sender = new Cli(['send', HOST, String(port), join(src, 'stopped.bin')]);
    await receiver.waitFor('stderr', /^stopped\.bin: 10% /m, 20_000);
    process.kill(sender.child.pid!, 'SIGINT');
    expect(await sender.exit()).toEqual({ code: 130, signal: null });
    expect(sender.stderr).toMatch(/^rx-rudp send: interrupted: 0 of 1 files sent$/m);
    expect(await receiver.exit()).toEqual({ code: 1, signal: null });
    expect(receiver.stderr).toMatch(/stopped\.bin: incomplete: the connection closed after \d+ of 134217728 bytes \(partial file deleted\)$/m);
    expect(readdirSync(out)).toEqual([]);
  });

  test('SIGTERM to a receiver in the middle of a file: partial file deleted, exit 1; the sender is told (shutting down), exit 1', async () => {
    const src = freshDir('src');
    writeSeededFile(join(src, 'cut.bin'), 128 * MIB, 6);
    const out = freshDir('out');
    const { cli: receiver, port } = await startReceiver(out);
    const sender = new Cli(['send', HOST, String(port), join(src, 'cut.bin')]);
    await receiver.waitFor('stderr', /^cut\.bin: 10% /m, 20_000);
    process.kill(receiver.child.pid!, 'SIGTERM');
    expect(await receiver.exit()).toEqual({ code: 1, signal: null });
    expect(receiver.stderr).toMatch(/^rx-rudp receive: interrupted while receiving cut\.bin \(\d+ of 134217728 bytes\): partial file deleted$/m);
    expect(readdirSync(out)).toEqual([]);
    expect(await sender.exit()).toEqual({ code: 1, signal: null });
    expect(sender.stderr).toMatch(/^rx-rudp send: .*shutting down/m);
  });

  test('data messages larger than the receiver accepts: the connection fails, both exit 1, nothing left behind', async () => {
    const src = freshDir('src');
    writeSeededFile(join(src, 'chunky'), 3 * MIB, 7);
    const out = freshDir('out');
    const { cli: receiver, port } = await startReceiver(out, '--once', '--max-message-size', String(MIB));
    const sender = await run(['send', HOST, String(port), '--chunk-size', String(2 * MIB), join(src, 'chunky')]);
    expect(sender.code).toBe(1);
    expect(sender.stderr).toMatch(/^rx-rudp send: .*--max-message-size/m);
    expect(await receiver.exit()).toEqual({ code: 1, signal: null });
    expect(receiver.stderr).toMatch(/chunky: incomplete: the connection failed: .*\(partial file deleted\)$/m);
    expect(readdirSync(out)).toEqual([]);
  });

  test('a small --max-buffered-bytes and --chunk-size still deliver (the bound throttles, never overflows)', async () => {
    const src = freshDir('src');
    const expected = writeSeededFile(join(src, 'throttled'), 5 * MIB + 3, 8);
    const out = freshDir('out');
    const { cli: receiver, port } = await startReceiver(out, '--once');
    const sender = await run(['send', HOST, String(port), '--chunk-size', '65536', '--max-buffered-bytes', '200000', join(src, 'throttled')]);
    expect(errorsOf(sender.stderr)).toEqual([]);
    expect(sender.code).toBe(0);
    expect(await receiver.exit()).toEqual({ code: 0, signal: null });
    expect(await sha256File(join(out, 'throttled'))).toBe(expected);
  });
});

describe('figures that agree', () => {
  test("the sender's last progress line, its file line and its summary give one rate for one file", async () => {
    // 48 MiB: more than the 32 MiB write window, by which reading runs ahead of delivery.
    const src = freshDir('src');
    writeSeededFile(join(src, 'rate.bin'), 48 * MIB, 11);
    const out = freshDir('out');
    const { cli: receiver, port } = await startReceiver(out, '--once');
    const sender = await run(['send', HOST, String(port), join(src, 'rate.bin')], 60_000);
    expect(sender.code).toBe(0);
    expect(await receiver.exit(30_000)).toEqual({ code: 0, signal: null });
    const mib = (text: string): number => Number(text);
    const last = sender.stderr.match(/^rate\.bin: 100% \(48\.00 MiB of 48\.00 MiB, ([\d.]+) MiB\/s, ETA 0:00\)$/m);
    const file = sender.stdout.match(/^sent rate\.bin: 48\.00 MiB in [\d.]+ s \(([\d.]+) MiB\/s\)/m);
    const summary = sender.stdout.match(/^sent 1 file to [^:]+:\d+: 48\.00 MiB in [\d.]+ s \(([\d.]+) MiB\/s\)$/m);
    expect({ last: last !== null, file: file !== null, summary: summary !== null }).toEqual({ last: true, file: true, summary: true });
    // The same bytes over the same time base: equal up to rounding (and the microseconds between them).
    const rates = [mib(last![1]!), mib(file![1]!), mib(summary![1]!)];
    for (const rate of rates) expect(Math.abs(rate / rates[0]! - 1)).toBeLessThan(0.02);
    // Progress follows delivery: no line claims more than the receiver had when it was printed,
    // so the percentages only reach 100 % at the confirmation, with the others' rate.
    expect(sender.stderr.match(/^rate\.bin: 100% /gm)).toHaveLength(1);
  }, 90_000);
});

describe('the receiver checks what it is sent (a hand-made sender on the library API)', () => {
  /** Connects to the receiver, sends `messages`, and collects the replies until the receiver closes. */
  async function exchange(port: number, messages: readonly Uint8Array[]): Promise<unknown[]> {
    return firstValueFrom(
      connect({ host: HOST, port }).pipe(
        switchMap((conn) => {
          const replies$ = conn.messages$.pipe(map((m) => decodeReceiverMessage(m)), toArray());
          for (const m of messages) conn.send$.next(m);
          return replies$;
        }),
        take(1),
      ),
    );
  }

  test.each([
    ['../escape', /contains a path separator/],
    ['a/b', /contains a path separator/],
    ['..', /is not a file name/],
    ['', /the file name is empty/],
  ])('a header naming %j is refused: error reply, the receiver closes, exit 1, nothing written', async (name, reason) => {
    const out = freshDir('out');
    const { cli: receiver, port } = await startReceiver(out, '--once');
    const replies = await within(exchange(port, [encodeControl({ type: 'file', version: 1, name, size: 4 }), Buffer.from('data')]), 5000, () => 'the replies');
    // A refused header has no name the receiver accepts: '' in the reply.
    expect(replies).toEqual([{ type: 'error', name: '', reason: expect.stringMatching(reason) }]);
    expect(await receiver.exit()).toEqual({ code: 1, signal: null });
    expect(receiver.stderr).toMatch(reason);
    expect(readdirSync(out)).toEqual([]);
    expect(existsSync(join(work, 'escape'))).toBe(false);
  });

  test('a SHA-256 that does not match: error reply, no NAME and no NAME.part, exit 1', async () => {
    const out = freshDir('out');
    const { cli: receiver, port } = await startReceiver(out, '--once');
    const wrong = '0'.repeat(64);
    const replies = await within(
      exchange(port, [encodeControl({ type: 'file', version: 1, name: 'x.txt', size: 5 }), Buffer.from('hel'), Buffer.from('lo'), encodeControl({ type: 'end', sha256: wrong })]),
      5000,
      () => 'the replies',
    );
    expect(replies).toEqual([{ type: 'error', name: 'x.txt', reason: expect.stringMatching(new RegExp(`^SHA-256 mismatch: received ${createHash('sha256').update('hello').digest('hex')}, the sender's is ${wrong}$`)) }]);
    expect(await receiver.exit()).toEqual({ code: 1, signal: null });
    expect(readdirSync(out)).toEqual([]);
  });

  test('not a header, or more data than announced: refused', async () => {
    for (const messages of [[Buffer.from('just bytes')], [encodeControl({ type: 'file', version: 1, name: 'f', size: 2 }), Buffer.from('abc')]]) {
      const out = freshDir('out');
      const { cli: receiver, port } = await startReceiver(out, '--once');
      const replies = await within(exchange(port, messages), 5000, () => 'the replies');
      expect(replies).toEqual([{ type: 'error', name: expect.any(String), reason: expect.stringMatching(/expected a JSON control message|more data than the 2 bytes announced/) }]);
      expect(await receiver.exit()).toEqual({ code: 1, signal: null });
      expect(readdirSync(out)).toEqual([]);
    }
  });
});

describe('the control channel, and peers from before channels', () => {
  const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

  test.each([
    [true, CONTROL_CHANNEL],
    [false, 0],
  ])('a library sender with channels: %p gets every reply of the receiver on channel %p, none on the other', async (channels, expected) => {
    const out = freshDir('out');
    const { cli: receiver, port } = await startReceiver(out, '--once');
    // A little over one WRITTEN_STEP, so that a "written" report comes before the "ok".
    const data = Buffer.alloc(WRITTEN_STEP + 1024, 7);
    const chunks = [data.subarray(0, WRITTEN_STEP / 2), data.subarray(WRITTEN_STEP / 2, WRITTEN_STEP), data.subarray(WRITTEN_STEP)];
    const replies = await within(
      firstValueFrom(
        connect({ host: HOST, port, channels }).pipe(
          switchMap((conn) => {
            const collect = (messages$: Connection['messages$']): Promise<unknown[]> => firstValueFrom(messages$.pipe(map((m) => decodeReceiverMessage(m)), toArray()));
            const onZero = collect(conn.messages$);
            const onControl = channels ? collect(conn.channel(CONTROL_CHANNEL).messages$) : Promise.resolve([]);
            conn.send$.next(encodeControl({ type: 'file', version: 1, name: 'c.bin', size: data.length }));
            for (const chunk of chunks) conn.send$.next(chunk);
            conn.send$.next(encodeControl({ type: 'end', sha256: sha256(data) }));
            // The "ok" is the last reply: then close, and the collections complete.
            const ok$ = (channels ? conn.channel(CONTROL_CHANNEL) : conn).messages$.pipe(
              map((m) => decodeReceiverMessage(m)),
              take(2),
              toArray(),
              map(() => conn.close()),
            );
            return ok$.pipe(switchMap(() => Promise.all([onZero, onControl])));
          }),
        ),
      ),
      10_000,
      () => 'the replies',
    );
    const expectedReplies = [
      { type: 'written', bytes: WRITTEN_STEP },
      { type: 'ok', name: 'c.bin', size: data.length, sha256: sha256(data), written: data.length },
    ];
    expect(replies).toEqual(expected === 0 ? [expectedReplies, []] : [[], expectedReplies]);
    expect(await receiver.exit()).toEqual({ code: 0, signal: null });
    expect(readFileSync(join(out, 'c.bin')).equals(data)).toBe(true);
  });

  test.each([
    [true, CONTROL_CHANNEL],
    [false, 0],
  ])('the sender gets its files confirmed by a library receiver with channels: %p that replies on channel %p', async (channels, replyOn) => {
    const src = freshDir('src');
    const content = Buffer.from('a file confirmed on the control channel');
    writeFileSync(join(src, 'f.txt'), content);
    let listening!: (port: number) => void;
    const bound = new Promise<number>((resolve) => (listening = resolve));
    const seen: unknown[] = [];
    const server = listen({ host: HOST, port: 0, channels, onListening: (address) => listening(address.port) }).subscribe((conn) => {
      const reply = replyOn === 0 ? conn : conn.channel(replyOn);
      let index = 0;
      // Header, data, trailer: all on channel 0, in order.
      conn.messages$.subscribe((m) => {
        const text = Buffer.from(m).toString('utf8');
        seen.push(index === 1 ? text : JSON.parse(text));
        if (index++ === 2) reply.send$.next(encodeControl({ type: 'ok', name: 'f.txt', size: content.length, sha256: sha256(content), written: content.length }));
      });
    });
    subscriptions.add(server);
    const port = await within(bound, 5000, () => 'the library receiver to listen');
    const sender = new Cli(['send', HOST, String(port), join(src, 'f.txt')]);
    const exit = await sender.exit();
    server.unsubscribe();
    expect({ exit, errors: errorsOf(sender.stderr) }).toEqual({ exit: { code: 0, signal: null }, errors: [] });
    expect(sender.stdout).toMatch(/^sent f\.txt: .* verified by the receiver$/m);
    expect(seen).toEqual([{ type: 'file', version: 1, name: 'f.txt', size: content.length }, content.toString('utf8'), { type: 'end', sha256: sha256(content) }]);
  });
});

describe('usage and failures before any transfer', () => {
  test('help: the commands are listed, each has its --help', async () => {
    const top = await run(['--help']);
    expect(top.stdout).toMatch(/^ {2}send +send files/m);
    expect(top.stdout).toMatch(/^ {2}receive +receive files/m);
    const send = await run(['send', '--help']);
    expect(send.code).toBe(0);
    expect(send.stdout).toMatch(/^Usage: rx-rudp send HOST PORT FILE\.\.\. \[options\]/);
    for (const flag of ['--chunk-size', '--max-buffered-bytes', '--connect-timeout']) expect(send.stdout).toContain(flag);
    const receive = await run(['help', 'receive']);
    expect(receive.code).toBe(0);
    expect(receive.stdout).toMatch(/^Usage: rx-rudp receive \[--port PORT\]/);
    for (const flag of ['--out', '--once', '--port', '--host', '--max-message-size']) expect(receive.stdout).toContain(flag);
  });

  test('usage errors exit 2 with one line naming the problem', async () => {
    const src = freshDir('src');
    writeFileSync(join(src, 'f'), 'x');
    mkdirSync(join(src, 'other'));
    writeFileSync(join(src, 'other', 'f'), 'y');
    const cases: [string[], RegExp][] = [
      [['send'], /missing HOST, PORT and FILE/],
      [['send', HOST, '7000'], /missing FILE/],
      [['send', HOST, 'x', join(src, 'f')], /PORT/],
      [['send', HOST, '7000', join(src, 'nope')], /cannot send '.*nope': no such file/],
      [['send', HOST, '7000', src], /not a regular file/],
      [['send', HOST, '7000', join(src, 'f'), join(src, 'other', 'f')], /have the same name 'f'/],
      [['send', HOST, '7000', '--chunk-size', '0', join(src, 'f')], /--chunk-size/],
      [['send', HOST, '7000', '--chunk-size', '2000', '--max-buffered-bytes', '1000', join(src, 'f')], /invalid value for --chunk-size: '2000' \(expected at most --max-buffered-bytes, 1000\)/],
      [['send', HOST, '7000', '--max-buffered-bytes', '0', join(src, 'f')], /invalid value for --max-buffered-bytes: '0' \(expected an integer from 1 to/],
      [['receive', '--out', join(src, 'missing')], /--out: '.*missing' does not exist/],
      [['receive', '--out', join(src, 'f')], /--out: '.*f' is not a directory/],
      [['receive', 'stray'], /stray/],
      [['receive', '--port', '70000'], /invalid value for --port: '70000' \(expected an integer from 0 to 65535\)/],
    ];
    for (const [args, pattern] of cases) {
      const result = await run(args);
      expect({ args, code: result.code }).toEqual({ args, code: 2 });
      expect(result.stderr).toMatch(new RegExp(`^rx-rudp ${args[0]}: [^\n]+; see 'rx-rudp ${args[0]} --help'\n$`));
      expect(result.stderr).toMatch(pattern);
      expect(result.stdout).toBe('');
    }
  });

  test('nobody listening: the sender exits 1 with the reason', async () => {
    const src = freshDir('src');
    writeFileSync(join(src, 'f'), 'x');
    const out = freshDir('out');
    // A receiver that is gone: its port is free again.
    const { cli: receiver, port } = await startReceiver(out);
    process.kill(receiver.child.pid!, 'SIGTERM');
    await receiver.exit();
    const result = await run(['send', HOST, String(port), '--connect-timeout', '300', join(src, 'f')]);
    expect(result.code).toBe(1);
    // A connect timeout, or (where the socket reports ICMP port unreachable) at once.
    expect(result.stderr).toMatch(new RegExp(`^rx-rudp send: (no answer from 127\\.0\\.0\\.1:${port} within 300 ms|nothing is listening at 127\\.0\\.0\\.1:${port})`));
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stdout).toBe('');
  });

  test('--once refuses a second sender while the first is connected', async () => {
    const out = freshDir('out');
    const { cli: receiver, port } = await startReceiver(out, '--once');
    // Wait for the first connection to be open (not a fixed sleep): then the second must be refused.
    let opened!: () => void;
    const open = new Promise<void>((resolve) => (opened = resolve));
    const first = connect({ host: HOST, port }).subscribe({ next: () => opened(), error: () => undefined });
    subscriptions.add(first);
    await open;
    const src = freshDir('src');
    writeFileSync(join(src, 'f'), 'x');
    const second = await run(['send', HOST, String(port), join(src, 'f')]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/refused the connection/);
    first.unsubscribe();
    expect(await receiver.exit()).toEqual({ code: 0, signal: null });
    expect(receiver.stdout).toMatch(/^received 0 files from /m);
  });
});

describe('transfer protocol helpers', () => {
  test('names: base names only', () => {
    expect(checkName('report.pdf')).toBeUndefined();
    expect(checkName('a..b')).toBeUndefined();
    for (const bad of ['', '.', '..', '../x', 'a/b', 'a\\b', 'nul\0', 'x'.repeat(256), 42]) expect(checkName(bad)).toEqual(expect.any(String));
  });

  test('headers: version, name and size are checked', () => {
    expect(decodeHeader(encodeControl({ type: 'file', version: 1, name: 'f', size: 3 }))).toEqual({ type: 'file', version: 1, name: 'f', size: 3 });
    expect(decodeHeader(Buffer.from('{"type":"file","version":2,"name":"f","size":3}'))).toMatch(/unsupported transfer version 2/);
    expect(decodeHeader(Buffer.from('{"type":"file","version":1,"name":"f","size":-1}'))).toMatch(/invalid file size/);
    expect(decodeHeader(Buffer.alloc(100_000, 0x20))).toMatch(/expected a control message/);
  });
});

describe('progress', () => {
  function output(tty: boolean, columns: number | undefined = 100): ProgressOutput & { text: string } {
    const out = { text: '', isTTY: tty, ...(columns === undefined ? {} : { columns }), write: (s: string) => ((out.text += s), true) };
    return out;
  }

  test('on a terminal: a bar with percentage, amounts, rate and ETA, redrawn in place at most every 100 ms', () => {
    let now = 0;
    const out = output(true, 200);
    const progress = new Progress('file.bin', 100 * MIB, out, { now: () => now });
    now = 1000;
    progress.update(25 * MIB);
    expect(out.text).toBe(`\rfile.bin [${'#'.repeat(10)}${'-'.repeat(30)}]  25%  25.00 MiB of 100.00 MiB  25.00 MiB/s  ETA 0:03\x1b[K`);
    now = 1050;
    progress.update(26 * MIB); // too soon: not redrawn
    expect(out.text.split('\r')).toHaveLength(2);
    now = 4000;
    progress.update(100 * MIB);
    progress.finish();
    expect(out.text.endsWith(`[${'#'.repeat(40)}] 100%  100.00 MiB of 100.00 MiB  25.00 MiB/s  ETA 0:00\x1b[K\n`)).toBe(true);
    progress.update(1); // after finish: nothing
    progress.finish();
    expect(out.text.endsWith('\x1b[K\n')).toBe(true);
  });

  test('a narrower terminal gets a shorter bar, a narrow one none (the figures stay); never wider than the terminal', () => {
    const line = (columns: number | undefined): string => {
      const out = output(true, columns);
      const progress = new Progress('a-rather-long-file-name-indeed.tar.gz', 10 * 1024 ** 3, out, { now: () => 1 });
      progress.update(5 * 1024 ** 3);
      return out.text.replace('\r', '').replace('\x1b[K', '');
    };
    const tail = '  50%  5.00 GiB of 10.00 GiB  0 B/s  ETA -:--';
    expect(line(90)).toBe(`a-rather-long-file-name… [${'#'.repeat(9)}${'-'.repeat(8)}]${tail}`);
    expect(line(90)).toHaveLength(89);
    expect(line(60)).toBe(`a-rather-long-file-name…${tail}`.slice(0, 59));
    expect(line(0)).toBe(line(80)); // a terminal that does not tell its width: 80
  });

  test('not a terminal: one plain line per 10 % crossed, and one every 5 s when slower', () => {
    let now = 0;
    const out = output(false);
    const progress = new Progress('f', 1000, out, { now: () => now });
    for (let done = 50; done <= 1000; done += 50) {
      now += 100;
      progress.update(done);
    }
    const lines = out.text.trimEnd().split('\n');
    expect(lines.map((l) => l.split(' ')[1])).toEqual(['10%', '20%', '30%', '40%', '50%', '60%', '70%', '80%', '90%', '100%']);
    expect(lines[9]).toBe('f: 100% (1000 B of 1000 B, 500 B/s, ETA 0:00)');

    const slow = output(false);
    now = 0;
    const trickle = new Progress('g', 1000, slow, { now: () => now });
    now = 6000;
    trickle.update(1);
    expect(slow.text).toBe('g: 0% (1 B of 1000 B, 0 B/s, ETA 1:39:54)\n');
  });

  test('formats', () => {
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(256 * MIB)).toBe('256.00 MiB');
    expect(formatBytes(1.5 * 1024 * MIB)).toBe('1.50 GiB');
    expect(formatClock(59.6)).toBe('1:00');
    expect(formatClock(3725)).toBe('1:02:05');
  });
});
