/**
 * Every program in examples/ run with its one command (`node examples/run.js NAME`, which is what
 * `npm run example -- NAME` runs), on loopback, checked by its output; and the README's code
 * blocks checked to be the examples' code (so they are type-checked and run too).
 */
import { execFile, execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const ROOT = resolve(__dirname, '../..');
const RUN = join(ROOT, 'examples', 'run.js');

jest.setTimeout(60_000);

beforeAll(() => {
  // Warm the incremental build once, so that each run below only checks it.
  execFileSync(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'examples', 'tsconfig.json')], {
    cwd: ROOT,
    stdio: 'pipe',
    timeout: 120_000,
  });
}, 120_000);

interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

function runExample(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  const started = Date.now();
  return new Promise((resolveRun) => {
    execFile(process.execPath, [RUN, ...args], { cwd: ROOT, env: { ...process.env, ...env }, timeout: 50_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      resolveRun({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

/** A loopback UDP port that is free right now. */
async function freePort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((done) => socket.bind(0, '127.0.0.1', done));
  const { port } = socket.address();
  await new Promise<void>((done) => socket.close(done));
  return port;
}

test('every example has a test here', () => {
  const names = readdirSync(join(ROOT, 'examples'))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => f.slice(0, -3))
    .sort();
  expect(names).toEqual(['backpressure', 'chat', 'echo-server', 'file-transfer', 'request-response']);
});

test('run.js without a known name lists the examples, exit 2', async () => {
  const ran = await runExample(['nope']);
  expect(ran.code).toBe(2);
  expect(ran.stderr).toMatch(/^usage: npm run example -- <name>/);
  expect(ran.stderr).toMatch(/examples: .*echo-server/);
});

test('echo-server: the README example prints both echoes and exits by itself', async () => {
  const ran = await runExample(['echo-server'], { PORT: String(await freePort()) });
  expect(ran).toMatchObject({ code: 0, stdout: 'hello\nworld\n', stderr: '' });
});

test('chat: everyone hears everyone else, then the room closes', async () => {
  const ran = await runExample(['chat']);
  expect(ran.stderr).toBe('');
  expect(ran.code).toBe(0);
  const lines = ran.stdout.trimEnd().split('\n');
  for (const [who, others] of [
    ['alice', ['bob', 'carol']],
    ['bob', ['alice', 'carol']],
    ['carol', ['alice', 'bob']],
  ] as const) {
    for (const other of others) expect(lines).toContain(`[${who}] <${other}> hello from ${other}`);
  }
  expect(lines).toContain('[alice] * bob joined');
  expect(lines).toContain('[bob] * carol joined');
  expect(lines[lines.length - 1]).toBe('everyone heard everyone: chat over');
});

test('request-response: each request is acknowledged, then answered', async () => {
  const ran = await runExample(['request-response']);
  expect(ran.stderr).toBe('');
  expect(ran.code).toBe(0);
  const events = ran.stdout
    .trimEnd()
    .split('\n')
    .map((line) => line.replace(/^ *\d+ ms {2}/, ''));
  expect([...events].sort()).toEqual(
    ['request 1 acknowledged', 'request 1 answered: HELLO', 'request 2 acknowledged', 'request 2 answered: REQUEST', 'request 3 acknowledged', 'request 3 answered: RESPONSE'].sort(),
  );
  for (const id of [1, 2, 3]) expect(events.indexOf(`request ${id} acknowledged`)).toBeLessThan(events.findIndex((e) => e.startsWith(`request ${id} answered`)));
});

test('file-transfer: 32 MiB streamed with backpressure, SHA-256 verified', async () => {
  const ran = await runExample(['file-transfer']);
  expect(ran.stderr).toBe('');
  expect(ran.code).toBe(0);
  const sha = ran.stdout.match(/^sender: example\.bin, 33554432 bytes, SHA-256 ([0-9a-f]{64})$/m);
  expect(sha).not.toBeNull();
  expect(ran.stdout).toMatch(/^receiver: example\.bin, 33554432 bytes, SHA-256 matches: renamed into place$/m);
  expect(ran.stdout).toMatch(/^sent and verified 32\.00 MiB in [\d.]+ s$/m);
});

test('file-transfer FILE: sends the given file', async () => {
  const ran = await runExample(['file-transfer', join(ROOT, 'package.json')]);
  expect(ran.code).toBe(0);
  expect(ran.stdout).toMatch(/^receiver: package\.json, \d+ bytes, SHA-256 matches/m);
});

test('backpressure: both recipes stay within the bound and deliver everything', async () => {
  const ran = await runExample(['backpressure']);
  expect(ran.stderr).toBe('');
  expect(ran.code).toBe(0);
  expect(ran.stdout).toMatch(/^sendAll: 64 MiB offered in 1 MiB messages, all arrived in [\d.]+ s; largest bufferedBytes \d+ <= maxBufferedBytes 4194304: true$/m);
  expect(ran.stdout).toMatch(/^sendAcknowledged: 64 MiB offered in 1 MiB messages, all arrived in [\d.]+ s; largest bufferedBytes \d+ <= maxBufferedBytes 4194304: true$/m);
});

describe('README', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');

  /** The code between `// #region readme` and `// #endregion` in `file`, as a user would write it. */
  function regions(file: string): string {
    const text = readFileSync(join(ROOT, file), 'utf8');
    const found = [...text.matchAll(/\/\/ #region readme\n([\s\S]*?)\/\/ #endregion\n/g)].map((m) => m[1]!);
    expect(found.length).toBeGreaterThan(0);
    return found
      .join('\n')
      .replace(/'\.\.\/lib\/index'/g, "'rx-rudp'")
      .replace(/'\.\.\/lib\/testing\/index'/g, "'rx-rudp/testing'")
      .replace(/'\.\.\/examples\/request-response'/g, "'./request-response'")
      .trimEnd();
  }

  /** Each ```ts block with the HTML comment before it. */
  const blocks = [...readme.matchAll(/(?:<!-- (.*?) -->\n)?```ts\n([\s\S]*?)```/g)].map((m) => ({ marker: m[1], code: m[2]!.trimEnd() }));

  test('every TypeScript block is either code from a file that runs (marked "from FILE") or marked a fragment', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(5);
    for (const block of blocks) expect({ marker: block.marker, code: block.code.slice(0, 60) }).toEqual({ marker: expect.stringMatching(/^(from \S+|fragment: .+)$/), code: expect.any(String) });
  });

  test('each "from FILE" block is that file\'s readme region, verbatim (imports as a user writes them)', () => {
    const from = blocks.filter((b) => b.marker?.startsWith('from '));
    expect(from.map((b) => b.marker)).toEqual(
      expect.arrayContaining(['from examples/echo-server.ts', 'from examples/backpressure.ts', 'from examples/request-response.ts', 'from marble-tests/testing-kit-example.spec.ts']),
    );
    for (const block of from) expect({ file: block.marker, code: block.code }).toEqual({ file: block.marker, code: regions(block.marker!.slice('from '.length)) });
  });
});
