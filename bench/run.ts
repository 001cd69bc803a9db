/**
 * Runs the benchmarks (each in its own child process, one after the other), prints one markdown
 * report and writes it with the raw numbers to bench/results/<date>[-<only>][-quick][-<n>].{md,json}
 * (-2, -3, … for later runs of the same day: results are never overwritten).
 *
 *   npm run bench                         # all six, full size (a few minutes)
 *   npm run bench -- --quick              # shorter runs
 *   npm run bench -- --only bulk,kcp      # a subset; other flags pass through to the benchmarks
 *   npm run bench -- --no-save            # print only
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { machineInfo, machineMarkdown, parseFlags, flagBool, flagString, type BenchResult } from './lib/common';
import { Child, type Message } from './lib/proc';

const BENCHMARKS = ['bulk', 'kcp', 'many', 'sparse', 'workers', 'channels', 'path'] as const;
type Name = (typeof BENCHMARKS)[number];

/** Upper bounds per benchmark (the child is killed by PID past them). */
const LIMIT_MINUTES: Record<Name, { full: number; quick: number }> = {
  bulk: { full: 15, quick: 5 },
  kcp: { full: 4, quick: 2 },
  many: { full: 6, quick: 2 },
  sparse: { full: 5, quick: 2 },
  workers: { full: 8, quick: 3 },
  channels: { full: 12, quick: 3 },
  path: { full: 30, quick: 12 },
};

const OWN_FLAGS = new Set(['only', 'no-save', 'out']);

function git(args: readonly string[]): string | undefined {
  try {
    return execFileSync('git', ['--no-optional-locks', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

function localDate(): string {
  const d = new Date();
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const flags = parseFlags(argv);
  const quick = flags.has('quick');
  const only = flagString(flags, 'only')?.split(',').filter((s) => s !== '');
  for (const name of only ?? []) {
    if (!(BENCHMARKS as readonly string[]).includes(name)) throw new Error(`--only: unknown benchmark '${name}' (known: ${BENCHMARKS.join(', ')})`);
  }
  const chosen = BENCHMARKS.filter((b) => only === undefined || only.includes(b));
  // Everything but run.ts's own flags goes to each benchmark.
  const passThrough: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const name = arg.replace(/^--/, '').split('=')[0]!;
    const takesValue = !arg.includes('=') && argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--');
    if (!OWN_FLAGS.has(name)) passThrough.push(arg, ...(takesValue ? [argv[i + 1]!] : []));
    if (takesValue) i++;
  }

  const machine = machineInfo();
  const command = process.env['npm_lifecycle_event'] === 'bench' ? `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}` : `node ${path.relative(process.cwd(), __filename)} ${argv.join(' ')}`.trim();
  const commit = git(['rev-parse', '--short', 'HEAD']);
  const dirty = git(['status', '--porcelain', '--', 'lib']);
  const started = new Date();
  const loadBefore = os.loadavg()[0]!;
  process.stderr.write(`benchmarks: ${chosen.join(', ')}${quick ? ' (quick)' : ''}\n`);

  const results: BenchResult[] = [];
  const failures: string[] = [];
  for (const name of chosen) {
    const limit = (quick ? LIMIT_MINUTES[name].quick : LIMIT_MINUTES[name].full) * 60_000;
    const script = path.join(__dirname, `${name}.js`);
    const t = Date.now();
    process.stderr.write(`== ${name}\n`);
    const child = new Child(`bench:${name}`, script, passThrough, { timeoutMs: limit });
    try {
      const message = await child.next<Message & { result: BenchResult }>('result', limit);
      results.push(message.result);
      process.stderr.write(`== ${name} done in ${((Date.now() - t) / 1000).toFixed(0)} s\n`);
    } catch (error) {
      const text = error instanceof Error ? error.message : String(error);
      failures.push(`${name}: ${text}`);
      process.stderr.write(`== ${name} FAILED: ${text}\n`);
    } finally {
      await child.stop(2000);
    }
  }

  const date = localDate();
  const loadAfter = os.loadavg()[0]!;
  const header = [
    `# rx-rudp benchmarks, ${date}${quick ? ' (quick)' : ''}`,
    '',
    `${machineMarkdown(machine)}`,
    '',
    `Command: \`${command}\` — commit ${commit ?? 'unknown'}${dirty ? ' with uncommitted changes under lib/' : ''}; started ${started.toISOString()}, took ${((Date.now() - started.getTime()) / 1000).toFixed(0)} s; 1-min load average ${loadBefore.toFixed(2)} before, ${loadAfter.toFixed(2)} after (other processes share the cores).`,
  ];
  const markdown = [
    ...header,
    ...results.flatMap((r) => ['', r.markdown, '', `_(${r.name}: ${r.seconds.toFixed(0)} s)_`]),
    ...(failures.length > 0 ? ['', '## Failed', ...failures.map((f) => `- ${f.split('\n')[0]}`)] : []),
    '',
  ].join('\n');
  process.stdout.write(`${markdown}\n`);

  if (!flagBool(flags, 'no-save')) {
    const dir = flagString(flags, 'out') ?? path.resolve(__dirname, '../../results');
    mkdirSync(dir, { recursive: true });
    const suffix = `${only !== undefined ? `-${chosen.join('+')}` : ''}${quick ? '-quick' : ''}`;
    // Never overwrite an earlier run's results: a second run of the day gets -2, then -3, …
    let base = path.join(dir, `${date}${suffix}`);
    for (let n = 2; existsSync(`${base}.json`) || existsSync(`${base}.md`); n++) base = path.join(dir, `${date}${suffix}-${n}`);
    const json = {
      date,
      command,
      commit,
      libModified: Boolean(dirty),
      machine,
      loadAverage: { before: loadBefore, after: loadAfter },
      startedAt: started.toISOString(),
      seconds: (Date.now() - started.getTime()) / 1000,
      results: Object.fromEntries(results.map((r) => [r.name, { seconds: r.seconds, data: r.data }])),
      failures,
    };
    for (const [ext, text] of [
      ['json', `${JSON.stringify(json, (_k, v: unknown) => (typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 1000) / 1000 : v), 1)}\n`],
      ['md', markdown],
    ] as const) {
      writeFileSync(`${base}.${ext}.tmp`, text);
      renameSync(`${base}.${ext}.tmp`, `${base}.${ext}`);
    }
    process.stderr.write(`wrote ${path.relative(process.cwd(), base)}.{md,json}\n`);
  }
  process.exit(failures.length > 0 ? 1 : 0);
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(2);
});
