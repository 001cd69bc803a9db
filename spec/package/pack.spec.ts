/**
 * The package as a user gets it: `npm pack` in a copy of the sources (so `prepack` builds dist/
 * from scratch, as in a fresh clone, without touching this checkout's dist/), the tarball's file
 * list, then an install of the tarball into a scratch project OFFLINE (`npm ci --offline`: the
 * tarball, and rxjs and @types/node from the npm cache at the versions of our lock file), and in
 * that project: an ES module consumer and a CommonJS consumer (each a real exchange over the
 * testing kit's virtual network and over loopback, and the same module instance whichever way it
 * was loaded), `tsc --noEmit` with moduleResolution nodenext (CJS and ESM files) and bundler, and
 * `npx rx-rudp --help`.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

jest.setTimeout(240_000);

const ROOT = join(__dirname, '..', '..');
const FIXTURES = join(__dirname, 'fixtures');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string; bin: Record<string, string>; peerDependencies: Record<string, string> };

// The parent `npm test` describes its own package to scripts through npm_package_* variables; the
// npm commands here work on other packages.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_(package|lifecycle)_|^INIT_CWD$/.test(k)));

function run(command: string, args: readonly string[], cwd: string, timeout = 120_000): string {
  try {
    return execFileSync(command, args, { cwd, env, timeout, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} (in ${cwd}) failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`.slice(0, 6000));
  }
}

let work: string;
let project: string;
let files: string[];

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'rx-rudp-pack-'));
  // What a fresh clone has that the build needs; dist/ deliberately not.
  const source = join(work, 'source');
  mkdirSync(source);
  for (const name of ['package.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'lib', 'scripts', 'docs']) {
    cpSync(join(ROOT, name), join(source, name), { recursive: true });
  }
  symlinkSync(join(ROOT, 'node_modules'), join(source, 'node_modules'), 'dir');
  run('npm', ['pack', '--pack-destination', work, '--silent'], source, 180_000);
  const tarball = `${pkg.name}-${pkg.version}.tgz`;
  files = run('tar', ['-tzf', join(work, tarball)], work)
    .split('\n')
    .filter(Boolean)
    .map((f) => f.replace(/^package\//, ''));

  // The scratch project: its lock file pins the tarball (by its hash) and, from our own lock file,
  // rxjs (the peer dependency) and @types/node, so `npm ci --offline` needs nothing but the cache.
  project = join(work, 'project');
  mkdirSync(project);
  cpSync(join(work, tarball), join(project, tarball));
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string; integrity: string; license?: string; dependencies?: Record<string, string> }> };
  const fromLock = (name: string) => {
    const { version, integrity, license, dependencies } = lock.packages[`node_modules/${name}`]!;
    return { version, resolved: `https://registry.npmjs.org/${name}/-/${name.split('/').pop()}-${version}.tgz`, integrity, license, dependencies };
  };
  const dependencies = { [pkg.name]: `file:${tarball}`, rxjs: fromLock('rxjs').version, '@types/node': fromLock('@types/node').version };
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'commonjs', dependencies }, null, 2));
  writeFileSync(
    join(project, 'package-lock.json'),
    JSON.stringify(
      {
        name: 'consumer',
        version: '1.0.0',
        lockfileVersion: 3,
        requires: true,
        packages: {
          '': { name: 'consumer', version: '1.0.0', dependencies },
          [`node_modules/${pkg.name}`]: {
            version: pkg.version,
            resolved: `file:${tarball}`,
            integrity: `sha512-${createHash('sha512').update(readFileSync(join(project, tarball))).digest('base64')}`,
            license: 'MIT',
            bin: pkg.bin,
            peerDependencies: pkg.peerDependencies,
          },
          'node_modules/rxjs': fromLock('rxjs'),
          'node_modules/tslib': fromLock('tslib'),
          'node_modules/@types/node': fromLock('@types/node'),
          'node_modules/undici-types': fromLock('undici-types'),
        },
      },
      null,
      2,
    ),
  );
  run('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--silent'], project);
  for (const f of readdirSync(FIXTURES)) cpSync(join(FIXTURES, f), join(project, f));
});

afterAll(() => {
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

test('the tarball holds the build (CJS, ESM wrappers, declarations for both), the docs and the licence, and nothing else', () => {
  for (const f of ['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md', 'dist/index.js', 'dist/index.d.ts', 'dist/index.mjs', 'dist/index.d.mts', 'dist/testing/index.js', 'dist/testing/index.d.ts', 'dist/testing/index.mjs', 'dist/testing/index.d.mts', 'dist/cluster/index.js', 'dist/cluster/index.d.ts', 'dist/cluster/index.mjs', 'dist/cluster/index.d.mts', 'dist/cli/main.js']) {
    expect(files).toContain(f);
  }
  const unexpected = files.filter((f) => !/^(package\.json|README\.md|LICENSE|CHANGELOG\.md|docs\/[^/]+\.md|dist\/.+\.(js|mjs|d\.ts|d\.mts))$/.test(f));
  expect(unexpected).toEqual([]);
  // Source maps would point at lib/*.ts, which is not shipped.
  expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
});

interface ConsumerReport {
  kind: string;
  virtual: string[];
  loopback: string;
  rootExports: string[];
  kitExports: string[];
  sameInstance: boolean;
  instanceofAcross: boolean;
  errorName: string;
}

function consumer(file: string): ConsumerReport {
  const out = run(process.execPath, [file], project, 30_000).trim().split('\n');
  return JSON.parse(out.at(-1)!) as ConsumerReport;
}

test.each(['consumer.mjs', 'consumer.cjs'])('%s: exchanges messages over the virtual network and loopback; import and require share one module instance', (file) => {
  const esm = file.endsWith('.mjs');
  const report = consumer(file);
  expect(report.kind).toBe(esm ? 'esm' : 'cjs');
  expect(report.virtual).toEqual(['one', 'two', 'three']);
  expect(report.loopback).toBe('over loopback');
  expect(report.sameInstance).toBe(true);
  expect(report.instanceofAcross).toBe(true);
  expect(report.errorName).toBe('InvalidOptionError');
  // The ESM entry points export exactly what the CommonJS ones do, and that is the public API.
  const cjsRoot = Object.keys(require(join(project, 'node_modules', pkg.name)) as object).filter((k) => k !== '__esModule').sort();
  const cjsKit = Object.keys(require(join(project, 'node_modules', pkg.name, 'dist', 'testing')) as object).filter((k) => k !== '__esModule').sort();
  expect(report.rootExports).toEqual(cjsRoot);
  expect(report.kitExports).toEqual(cjsKit);
  expect(cjsRoot).toEqual(expect.arrayContaining(['listen', 'connect', 'RudpError', 'ConnectTimeoutError', 'InvalidOptionError', 'SendBufferFullError', 'DEFAULTS', 'CloseReason']));
  expect(cjsKit).toEqual(expect.arrayContaining(['VirtualNetwork', 'listen', 'connect', 'Random']));
});

const TS_CONSUMER = `
import { ConnectTimeoutError, DEFAULTS, connect, listen, type ConnectOptions, type Connection, type ListenOptions, type RudpError } from 'rx-rudp';
import { VirtualNetwork, connect as connectVirtual, listen as listenVirtual, type LinkImpairment, type VirtualListenOptions } from 'rx-rudp/testing';
import { VirtualTimeScheduler, type Observable } from 'rxjs';

const scheduler = new VirtualTimeScheduler();
const impairment: LinkImpairment = { loss: 0.1, delay: 20 };
const network = new VirtualNetwork({ scheduler, seed: 1, default: impairment });
const serverOptions: VirtualListenOptions = { host: '10.0.0.2', port: 7000 };
const accepted: Observable<Connection> = listenVirtual(network, serverOptions);
const opened: Observable<Connection> = connectVirtual(network, { from: '10.0.0.1', host: '10.0.0.2', port: 7000 });
const listenOptions: ListenOptions = { host: '127.0.0.1', port: 0 };
const connectOptions: ConnectOptions = { host: '127.0.0.1', port: 7000 };
const real: [Observable<Connection>, Observable<Connection>] = [listen(listenOptions), connect(connectOptions)];
const error: RudpError = new ConnectTimeoutError('127.0.0.1', 7000, 1000);
const timeoutMs: number = (error as ConnectTimeoutError).timeoutMs;
// @ts-expect-error the port is a number: proves the declarations were found and are not 'any'
const wrong: ConnectOptions = { host: '127.0.0.1', port: '7000' };
export const used = [accepted, opened, real, timeoutMs, wrong, DEFAULTS];
`;

test.each([
  { name: 'nodenext, CommonJS file', file: 'consumer.ts', options: { module: 'nodenext', moduleResolution: 'nodenext' }, declarations: 'd.ts' },
  { name: 'nodenext, ES module file', file: 'consumer.mts', options: { module: 'nodenext', moduleResolution: 'nodenext' }, declarations: 'd.mts' },
  { name: 'bundler', file: 'consumer.ts', options: { module: 'preserve', moduleResolution: 'bundler' }, declarations: 'd.mts' },
])('tsc --noEmit, $name: rx-rudp and rx-rudp/testing type-check from the $declarations declarations', ({ name, file, options, declarations }) => {
  writeFileSync(join(project, file), TS_CONSUMER);
  const config = `tsconfig.${name.replace(/\W+/g, '-')}.json`;
  writeFileSync(join(project, config), JSON.stringify({ compilerOptions: { ...options, target: 'es2022', strict: true, noEmit: true, types: ['node'], skipLibCheck: false }, files: [file] }));
  const listed = run(process.execPath, [TSC, '-p', config, '--listFiles'], project, 60_000);
  const ours = listed.split('\n').filter((f) => f.includes(`node_modules/${pkg.name}/dist/`) && /(index|testing\/index)\.d\.m?ts$/.test(f));
  expect(ours.some((f) => f.endsWith(`/dist/index.${declarations}`))).toBe(true);
  expect(ours.some((f) => f.endsWith(`/dist/testing/index.${declarations}`))).toBe(true);
});

test('npx rx-rudp --help, from the project that installed it', () => {
  const out = run('npx', ['--offline', '--no-install', pkg.name, '--help'], project, 30_000);
  expect(out).toMatch(/rx-rudp <command> --help/);
  expect(out).toMatch(/echo/);
});

test('rx-rudp/cluster loads with require and import, and shares its error classes with rx-rudp', () => {
  const names = ['listenCluster', 'clusterWorker', 'isClusterWorker', 'clusterWorkerIndex', 'ClusterError', 'ReusePortUnsupportedError'];
  const cjs = `const c = require('rx-rudp/cluster'); const root = require('rx-rudp');
    console.log(JSON.stringify({ names: Object.keys(c).filter((k) => k !== '__esModule').sort(), same: c.ReusePortUnsupportedError === root.ReusePortUnsupportedError }));`;
  const esm = `import * as c from 'rx-rudp/cluster'; import { ReusePortUnsupportedError } from 'rx-rudp';
    console.log(JSON.stringify({ names: Object.keys(c).filter((k) => k !== 'default').sort(), same: c.ReusePortUnsupportedError === ReusePortUnsupportedError }));`;
  for (const [flag, source] of [['--input-type=commonjs', cjs], ['--input-type=module', esm]] as const) {
    const report = JSON.parse(run(process.execPath, [flag, '-e', source], project, 30_000).trim()) as { names: string[]; same: boolean };
    expect(report).toEqual({ names: [...names].sort(), same: true });
  }
});
