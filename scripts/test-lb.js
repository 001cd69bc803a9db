#!/usr/bin/env node
'use strict';
/**
 * rx-rudp behind nginx's UDP load balancer (the stream module), on loopback: the recipe of
 * docs/scaling.md, tested. Installs nothing. Needs nginx with the stream module (Debian:
 * apt-get install nginx libnginx-mod-stream) and the built library (npm run test:lb builds it).
 *
 * Starts two rx-rudp echo listeners (this script with --backend, each echoing with its name in
 * front) and nginx (its own config, pid file and logs in a temporary directory; in the
 * foreground, so it is our child), then: 200 connections through nginx all get their echoes; both
 * backends serve a fair share; after one backend is killed, its connections end with
 * ConnectionTimeoutError and every other connection still echoes. Kills only what it started, by
 * PID. Exit 0 when every check passed, 1 otherwise (nginx missing included).
 *   node scripts/test-lb.js [--connections 200]
 */
const { spawn, spawnSync } = require('node:child_process');
const { createSocket } = require('node:dgram');
const { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const path = require('node:path');
const { createInterface } = require('node:readline');

const ROOT = path.join(__dirname, '..');
const DIST = path.join(ROOT, 'dist', 'index.js');
const HOST = '127.0.0.1';
const BACKENDS = ['a', 'b'];
/** Client side: a dead path is noticed after (3 + 1) × 250 ms without an answer. */
const CLIENT = { pingInterval: 250, pingPacketCount: 3 };
/** Every wait of this script is bounded; the whole run too. */
const HARD_LIMIT_MS = 120_000;

/** A backend: echoes every message with "NAME:" in front; prints {"port"} once bound; exits when stdin closes. */
function backend(name) {
  const { listen } = require(DIST);
  const prefix = Buffer.from(`${name}:`);
  const subscription = listen({
    host: HOST,
    port: 0,
    onListening: (address) => process.stdout.write(`${JSON.stringify({ port: address.port })}\n`),
  }).subscribe({
    next: (connection) => connection.messages$.subscribe({ next: (m) => connection.send$.next(Buffer.concat([prefix, m])), error: () => {} }),
    error: (error) => {
      process.stderr.write(`backend ${name}: ${error.message}\n`);
      process.exit(1);
    },
  });
  process.stdin.on('end', () => {
    subscription.unsubscribe();
    process.exit(0);
  });
  process.stdin.resume();
}

async function main() {
  const started = Date.now();
  const connections = Number(flag('--connections') ?? 200);
  const guard = setTimeout(() => {
    console.error(`test-lb: still running after ${HARD_LIMIT_MS / 1000} s: giving up`);
    cleanup().finally(() => process.exit(1));
  }, HARD_LIMIT_MS);
  guard.unref();

  const nginx = findNginx();
  if (typeof nginx === 'string') {
    console.error(`test-lb: ${nginx}`);
    process.exitCode = 1;
    return;
  }
  if (!existsSync(DIST)) throw new Error(`${DIST} is missing: run npm run build first (npm run test:lb does)`);
  const { open, ConnectionTimeoutError } = require(DIST);
  const { firstValueFrom } = require('rxjs');

  const work = mkdtempSync(path.join(tmpdir(), 'rx-rudp-lb-'));
  const children = [];
  cleanupSteps.push(async () => {
    for (const child of children.reverse()) await stopChild(child);
    rmSync(work, { recursive: true, force: true });
  });
  const results = [];
  const check = (name, ok, detail) => {
    results.push(ok);
    console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? `: ${detail}` : ''}`);
  };

  try {
    // Backends.
    const backends = {};
    for (const name of BACKENDS) {
      const child = spawn(process.execPath, [__filename, '--backend', name], { stdio: ['pipe', 'pipe', 'inherit'] });
      children.push({ name: `backend ${name}`, child, stop: () => child.stdin.end() });
      const { port } = JSON.parse(await firstLine(child, 10_000, `backend ${name} printing its port`));
      backends[name] = { port, child };
    }

    // nginx, in the foreground (daemon off): the master is our child and takes its workers with it.
    const lbPort = await freeUdpPort();
    const config = path.join(work, 'nginx.conf');
    writeFileSync(config, nginxConfig({ work, lbPort, modules: nginx.modules, backends: BACKENDS.map((n) => backends[n].port) }));
    const errorLog = path.join(work, 'error.log');
    const test = runCommand(nginx.bin, ['-t', '-q', '-p', work, '-e', errorLog, '-c', config]);
    if (test.status !== 0) throw new Error(`nginx rejected the configuration:\n${test.output}\n${readIfExists(errorLog)}`);
    const master = spawn(nginx.bin, ['-p', work, '-e', errorLog, '-c', config], { stdio: ['ignore', 'inherit', 'inherit'] });
    // SIGTERM: fast shutdown of the master and its workers (a graceful one waits for every UDP session to time out).
    children.push({ name: 'nginx', child: master, stop: () => master.kill('SIGTERM') });
    await waitForPidFile(path.join(work, 'nginx.pid'), master, 10_000);
    console.log(`nginx ${nginx.version} (pid ${master.pid}) on udp ${HOST}:${lbPort} → backends a ${HOST}:${backends.a.port}, b ${HOST}:${backends.b.port}`);

    // 200 connections through nginx, opened in batches; each echo says which backend answered.
    const t0 = Date.now();
    const opened = [];
    for (let i = 0; i < connections; i += 20) {
      const batch = Array.from({ length: Math.min(20, connections - i) }, (_, k) => openThrough(open, firstValueFrom, lbPort, i + k));
      opened.push(...(await Promise.allSettled(batch)));
    }
    const live = opened.filter((r) => r.status === 'fulfilled').map((r) => r.value);
    const failures = opened.filter((r) => r.status === 'rejected').map((r) => r.reason.message);
    check(`${connections} connections through nginx, every echo back`, live.length === connections, failures.length ? `${failures.length} failed, e.g. ${failures[0]}` : `${Date.now() - t0} ms`);
    const share = Object.fromEntries(BACKENDS.map((n) => [n, live.filter((c) => c.backend === n).length]));
    // A consistent hash over two servers is not an even split; a fifth each is far from all on one.
    check('both backends serve a share', BACKENDS.every((n) => share[n] >= connections / 5), `a ${share.a}, b ${share.b}`);

    // Kill backend a: only its connections end, with ConnectionTimeoutError; b's keep echoing.
    const doomed = live.filter((c) => c.backend === 'a');
    const survivors = live.filter((c) => c.backend === 'b');
    const t1 = Date.now();
    const dead = children.find((c) => c.name === 'backend a');
    dead.child.kill('SIGKILL');
    const ends = await within(Promise.all(doomed.map((c) => firstValueFrom(c.connection.closed$))), 15_000, "backend a's connections ending");
    const timedOut = ends.filter((info) => info.error instanceof ConnectionTimeoutError).length;
    check("backend a killed: its connections end with ConnectionTimeoutError", timedOut === doomed.length, `${timedOut} of ${doomed.length} in ${Date.now() - t1} ms${timedOut === doomed.length ? '' : `; others: ${ends.filter((i) => !(i.error instanceof ConnectionTimeoutError)).map((i) => i.error?.name ?? `reason ${i.reason}`).slice(0, 3)}`}`);
    const still = await Promise.allSettled(survivors.map((c) => echo(firstValueFrom, c.connection, `still ${c.index}`)));
    const echoed = still.filter((r) => r.status === 'fulfilled' && r.value === `b:still ${survivors[still.indexOf(r)].index}`).length;
    const open_ = survivors.filter((c) => c.closed === undefined).length;
    check("backend b's connections unaffected: open and echoing", echoed === survivors.length && open_ === survivors.length, `${echoed} of ${survivors.length} echoed, ${open_} open`);

    for (const c of live) c.connection.close();
  } finally {
    await cleanup();
    clearTimeout(guard);
  }
  const passed = results.filter(Boolean).length;
  console.log(`test-lb: ${passed} passed, ${results.length - passed} failed (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  process.exitCode = passed === results.length && results.length > 0 ? 0 : 1;
}

/** The stream-module recipe of docs/scaling.md, with this run's ports and paths. */
function nginxConfig({ work, lbPort, modules, backends }) {
  return `# Written by scripts/test-lb.js for one run; see docs/scaling.md.
${modules === undefined ? '' : `load_module ${path.join(modules, 'ngx_stream_module.so')};\n`}daemon off;
pid ${path.join(work, 'nginx.pid')};
error_log ${path.join(work, 'error.log')} warn;
worker_processes 2;
events { worker_connections 1024; }

stream {
  upstream rudp {
    # Every datagram of a starter (one address and port) goes to one backend, also across nginx
    # sessions and nginx restarts; a backend's departure moves only the starters it had.
    hash $remote_addr$remote_port consistent;
${backends.map((port) => `    server ${HOST}:${port};`).join('\n')}
  }
  server {
    # reuseport: the kernel keeps a starter on one nginx worker, so one session (and one source
    # port towards the backend) carries all of its datagrams.
    listen ${HOST}:${lbPort} udp reuseport;
    proxy_pass rudp;
    # No proxy_responses: a connection is a long flow both ways, not request and answer.
    # Longer than any silence of a live connection (pings every pingInterval, 1 s by default).
    proxy_timeout 30s;
  }
}
`;
}

/** { bin, version, modules } of the nginx on PATH (or /usr/sbin), or why it cannot be used. */
function findNginx() {
  const candidates = [...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((d) => path.join(d, 'nginx')), '/usr/sbin/nginx', '/usr/local/sbin/nginx'];
  const bin = candidates.find((c) => existsSync(c));
  const install = 'install it (Debian/Ubuntu: apt-get install nginx libnginx-mod-stream), then run again';
  if (bin === undefined) return `nginx not found on PATH or in /usr/sbin: ${install}`;
  const r = runCommand(bin, ['-V']);
  if (r.status !== 0) return `${bin} -V failed: ${r.output}`;
  const version = /nginx version: nginx\/(\S+)/.exec(r.output)?.[1] ?? '?';
  if (/--with-stream(\s|$)/.test(r.output)) return { bin, version, modules: undefined };
  if (!/--with-stream=dynamic/.test(r.output)) return `${bin} (nginx ${version}) was built without the stream module: ${install}`;
  const modules = /--modules-path=(\S+)/.exec(r.output)?.[1] ?? path.join(/--prefix=(\S+)/.exec(r.output)?.[1] ?? '/usr/share/nginx', 'modules');
  if (!existsSync(path.join(modules, 'ngx_stream_module.so'))) return `nginx ${version} has no stream module in ${modules} (Debian/Ubuntu: apt-get install libnginx-mod-stream)`;
  return { bin, version, modules };
}

async function openThrough(open, firstValueFrom, port, index) {
  const connection = await open({ host: HOST, port, ...CLIENT });
  const entry = { index, connection, backend: undefined, closed: undefined };
  connection.closed$.subscribe((info) => (entry.closed = info));
  const reply = await echo(firstValueFrom, connection, `hello ${index}`);
  const match = /^([ab]):hello (\d+)$/.exec(reply);
  if (match === null || Number(match[2]) !== index) throw new Error(`connection ${index}: unexpected echo '${reply}'`);
  entry.backend = match[1];
  return entry;
}

async function echo(firstValueFrom, connection, text) {
  const reply = firstValueFrom(connection.messages$);
  connection.send$.next(Buffer.from(text));
  return Buffer.from(await within(reply, 5000, `the echo of '${text}'`)).toString();
}

// ---- processes, ports, waits ------------------------------------------------------------------

const cleanupSteps = [];
async function cleanup() {
  for (const step of cleanupSteps.splice(0)) await step();
}

/** Asks a child to stop (its own way), then SIGKILLs it, by its PID, if it has not exited within 5 s. */
async function stopChild({ child, stop }) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  stop();
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Runs a command to its end; its status and stdout + stderr (nginx -V and -t write to stderr). */
function runCommand(bin, args) {
  const r = spawnSync(bin, args, { encoding: 'utf8', timeout: 10_000 });
  return { status: r.status ?? 1, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

function freeUdpPort() {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, HOST, () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });
}

function firstLine(child, ms, what) {
  return within(
    new Promise((resolve, reject) => {
      createInterface({ input: child.stdout }).once('line', resolve);
      child.once('exit', (code, signal) => reject(new Error(`${what}: exited first (code ${code}, signal ${signal})`)));
    }),
    ms,
    what,
  );
}

async function waitForPidFile(file, child, ms) {
  const deadline = Date.now() + ms;
  while (!existsSync(file) || readFileSync(file, 'utf8').trim() !== String(child.pid)) {
    if (child.exitCode !== null) throw new Error(`nginx exited with code ${child.exitCode}: ${readIfExists(path.join(path.dirname(file), 'error.log'))}`);
    if (Date.now() > deadline) throw new Error(`nginx wrote no pid file within ${ms} ms: ${readIfExists(path.join(path.dirname(file), 'error.log'))}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  // The pid file is written before the workers bind: give them a moment.
  await new Promise((r) => setTimeout(r, 200));
}

function readIfExists(file) {
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function flag(name) {
  const i = process.argv.indexOf(name);
  return i === -1 ? undefined : process.argv[i + 1];
}

if (process.argv[2] === '--backend') backend(process.argv[3]);
else {
  main().catch(async (error) => {
    console.error(`test-lb: ${error && error.stack ? error.stack : error}`);
    await cleanup();
    process.exitCode = 1;
  });
}
