#!/usr/bin/env node
'use strict';
/**
 * Soak test: two processes (a listener and a starter) on the built library (dist/), 50
 * connections between them, random message sizes both ways, 5 % loss and 3 % reordering on every
 * datagram either process sends (scripts/soak-impair.js wraps each side's real UDP sockets).
 *
 *   npm run soak -- --minutes 10        (or --seconds 30; defaults: 1 minute)
 *   options: --connections 50 --loss 0.05 --reorder 0.03 --max-delay 10 --max-size 131072
 *            --window 4 --seed 1 --heap-growth-mb 4 --heap-end-mb 16 --rss-growth-mb 48 --rss-max-mb 300
 *
 * Every message carries (connection id, direction, sequence number, length, SHA-256 of the body);
 * the receiver checks the sequence number is exactly the next one (a gap is a loss or a reorder, a
 * lower one a duplicate), the checksum, and the body byte for byte against a regenerated copy.
 * At the end the senders stop, wait until every message is acknowledged, and the counts are
 * compared per connection and direction: sent must equal received.
 * Memory, in both processes: the live heap (heapUsed after two full GCs) is taken at the end of the
 * warm-up (the first 20 % of the run, at least 5 s) and again once everything is acknowledged; the
 * run fails if it grew by more than --heap-growth-mb, or if the live heap plus Buffers
 * (arrayBuffers) left at the end exceed --heap-end-mb: these are the leak checks. RSS is sampled
 * every second as well; the run fails if it grows by more than --rss-growth-mb after the warm-up
 * or ever exceeds --rss-max-mb. RSS follows how large V8 lets its young generation grow, which
 * differs between Node lines (Node 24 doubles Node 20's 16 MiB semi-space), so both processes run
 * with PEER_NODE_ARGS: the semi-space pinned to Node 20's default, and gc() exposed for the heap
 * checks. Then the RSS bounds mean the same on every tested line.
 * Prints progress, a table of RSS over time, and a final line `SOAK-RESULT {json}`. Exit code 0
 * when every check passed, 1 otherwise.
 */
const { spawn } = require('node:child_process');
const { createCipheriv, createHash } = require('node:crypto');
const { existsSync } = require('node:fs');
const path = require('node:path');
const { createInterface } = require('node:readline');

const ROOT = path.join(__dirname, '..');
/** Node flags for the two peer processes (see the header: same young generation on every line). */
const PEER_NODE_ARGS = ['--max-semi-space-size=16', '--expose-gc'];
const DIST = path.join(ROOT, 'dist', 'index.js');

// ---------------------------------------------------------------------------------------------
// Options.

function parseArgs(argv) {
  const o = {
    role: 'coordinator',
    seconds: 60,
    connections: 50,
    loss: 0.05,
    reorder: 0.03,
    maxDelay: 10,
    maxSize: 128 * 1024,
    window: 4,
    seed: 1,
    heapGrowthMb: 4,
    heapEndMb: 16,
    rssGrowthMb: 48,
    rssMaxMb: 300,
    port: 0,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) usage(`${arg} needs a value`);
      return v;
    };
    const number = () => {
      const v = Number(value());
      if (!Number.isFinite(v) || v < 0) usage(`${arg} needs a number >= 0`);
      return v;
    };
    switch (arg) {
      case '--minutes': o.seconds = number() * 60; break;
      case '--seconds': o.seconds = number(); break;
      case '--connections': o.connections = Math.max(1, Math.floor(number())); break;
      case '--loss': o.loss = number(); break;
      case '--reorder': o.reorder = number(); break;
      case '--max-delay': o.maxDelay = Math.max(1, number()); break;
      case '--max-size': o.maxSize = Math.floor(number()); break;
      case '--window': o.window = Math.max(1, Math.floor(number())); break;
      case '--seed': o.seed = Math.floor(number()); break;
      case '--heap-growth-mb': o.heapGrowthMb = number(); break;
      case '--heap-end-mb': o.heapEndMb = number(); break;
      case '--rss-growth-mb': o.rssGrowthMb = number(); break;
      case '--rss-max-mb': o.rssMaxMb = number(); break;
      case '--role': o.role = value(); break;
      case '--port': o.port = number(); break;
      case '--help': case '-h': usage(); break;
      default: usage(`unknown option ${arg}`);
    }
  }
  if (o.loss + o.reorder > 1) usage('--loss + --reorder must be at most 1');
  return o;
}

function usage(problem) {
  const text = 'usage: npm run soak -- [--minutes N | --seconds N] [--connections 50] [--loss 0.05] [--reorder 0.03] [--max-delay 10] [--max-size 131072] [--window 4] [--seed 1] [--heap-growth-mb 4] [--heap-end-mb 16] [--rss-growth-mb 48] [--rss-max-mb 300]';
  if (problem) {
    process.stderr.write(`soak: ${problem}\n${text}\n`);
    process.exit(2);
  }
  process.stdout.write(`${text}\n`);
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// Messages: a 48-byte header, then a body regenerated from (connection id, direction, seq).

const MAGIC = 0x534f414b; // 'SOAK'
const HEADER = 48;

/** The testing kit's seeded PRNG (dist/ is built before any soak process starts). */
function mulberry32(seed) {
  return require(path.join(ROOT, 'dist', 'testing', 'random.js')).mulberry32(seed);
}

function body(id, direction, seq, size) {
  const key = Buffer.alloc(16);
  key.writeUInt32BE(id >>> 0, 0);
  key.writeUInt32BE(direction, 4);
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(seq >>> 0, 0);
  return createCipheriv('aes-128-ctr', key, iv).update(Buffer.alloc(size));
}

function makeMessage(id, direction, seq, size) {
  const b = body(id, direction, seq, size);
  const m = Buffer.allocUnsafe(HEADER + size);
  m.writeUInt32BE(MAGIC, 0);
  m.writeUInt32BE(id >>> 0, 4);
  m.writeUInt32BE(direction, 8);
  m.writeUInt32BE(seq >>> 0, 12);
  m.writeUInt32BE(size, 16);
  createHash('sha256').update(b).digest().copy(m, 20, 0, 28);
  b.copy(m, HEADER);
  return m;
}

/** Returns undefined when the message is the expected one, else what is wrong with it. */
function checkMessage(m, id, direction, expectedSeq) {
  if (m.length < HEADER) return `runt message of ${m.length} bytes`;
  const buf = Buffer.from(m.buffer, m.byteOffset, m.byteLength);
  if (buf.readUInt32BE(0) !== MAGIC) return 'bad magic';
  if (buf.readUInt32BE(4) !== id >>> 0) return `message of connection ${buf.readUInt32BE(4)} on connection ${id}`;
  if (buf.readUInt32BE(8) !== direction) return 'wrong direction';
  const seq = buf.readUInt32BE(12);
  if (seq < expectedSeq) return `duplicate: seq ${seq}, expected ${expectedSeq}`;
  if (seq > expectedSeq) return `loss or reorder: seq ${seq}, expected ${expectedSeq}`;
  const size = buf.readUInt32BE(16);
  if (size !== buf.length - HEADER) return `length ${buf.length - HEADER}, header says ${size}`;
  const got = buf.subarray(HEADER);
  if (!createHash('sha256').update(got).digest().subarray(0, 28).equals(buf.subarray(20, HEADER))) return `checksum mismatch at seq ${seq}`;
  if (!got.equals(body(id, direction, seq, size))) return `body differs at seq ${seq}`;
  return undefined;
}

/** Log-uniform sizes 0..maxSize: every scale, from empty to the maximum, equally represented. */
function nextSize(random, maxSize) {
  return Math.min(maxSize, Math.floor(2 ** (random() * Math.log2(maxSize + 1))) - 1);
}

// ---------------------------------------------------------------------------------------------
// A peer process (listener or starter).

function peer(o) {
  if (!existsSync(DIST)) {
    process.stderr.write('soak: dist/ is missing: run `npm run build` first (npm run soak does)\n');
    process.exit(2);
  }
  const { listen, connect } = require(DIST);
  const { udpSocketFactory } = require(path.join(ROOT, 'dist', 'node', 'udp-socket.js'));
  const { impairedFactory } = require('./soak-impair');
  const direction = o.role === 'starter' ? 0 : 1; // the direction this process sends in
  const net = { sent: 0, dropped: 0, delayed: 0 };
  const socketFactory = impairedFactory(udpSocketFactory, { loss: o.loss, reorder: o.reorder, maxDelayMs: o.maxDelay, seed: o.seed * 2 + direction }, net);
  const out = (line) => process.stdout.write(JSON.stringify(line) + '\n');
  const protocol = { socketFactory, connectTimeout: 20_000 };
  const flows = new Map(); // connection id -> flow
  const problems = [];
  const problem = (text) => {
    if (problems.length < 50) problems.push(text);
  };
  let stopping = false;
  let totals = { sentMessages: 0, sentBytes: 0, receivedMessages: 0, receivedBytes: 0 };
  const started = Date.now();

  function attach(conn) {
    const random = mulberry32((o.seed * 7919 + conn.id * 31 + direction) >>> 0);
    const flow = { conn, sent: 0, acked: 0, outstanding: 0, received: 0, nextSeq: 0, ended: undefined };
    flows.set(conn.id, flow);
    conn.messages$.subscribe({
      next: (m) => {
        const wrong = checkMessage(m, conn.id, 1 - direction, flow.nextSeq);
        if (wrong !== undefined) problem(`connection ${conn.id}: ${wrong}`);
        // Expect the successor of what came (so one loss or duplicate is reported once).
        flow.nextSeq = m.length >= HEADER ? Buffer.from(m.buffer, m.byteOffset, m.byteLength).readUInt32BE(12) + 1 : flow.nextSeq + 1;
        flow.received++;
        totals.receivedMessages++;
        totals.receivedBytes += m.length;
      },
      error: (e) => {
        flow.ended = `${e.name}: ${e.message}`;
        if (!flow.closing) problem(`connection ${conn.id} ended: ${flow.ended}`);
      },
      complete: () => {
        flow.ended = 'completed';
        if (!flow.closing) problem(`connection ${conn.id} completed before the end of the run`);
      },
    });
    const pump = () => {
      while (!stopping && flow.outstanding < o.window && flow.ended === undefined) {
        const m = makeMessage(conn.id, direction, flow.sent++, nextSize(random, o.maxSize));
        flow.outstanding++;
        totals.sentMessages++;
        totals.sentBytes += m.length;
        conn.send(m).subscribe({
          complete: () => {
            flow.outstanding--;
            flow.acked++;
            pump();
          },
          error: (e) => {
            flow.outstanding--;
            if (!flow.closing) problem(`connection ${conn.id}: send failed: ${e.name}: ${e.message}`);
          },
        });
      }
    };
    pump();
  }

  let subscriptions = [];
  if (o.role === 'listener') {
    subscriptions.push(
      listen({ ...protocol, host: '127.0.0.1', port: 0, onListening: (a) => out({ event: 'listening', port: a.port }) }).subscribe({
        next: attach,
        error: (e) => problem(`listen failed: ${e.message}`),
      }),
    );
  } else {
    for (let i = 0; i < o.connections; i++) {
      subscriptions.push(
        connect({ ...protocol, host: '127.0.0.1', port: o.port }).subscribe({
          next: attach,
          error: (e) => problem(`connect #${i} failed: ${e.name}: ${e.message}`),
        }),
      );
    }
  }

  const sample = () => {
    const m = process.memoryUsage();
    out({ event: 'sample', t: Date.now() - started, rss: m.rss, heapUsed: m.heapUsed, connections: flows.size, ...totals, problems: problems.length });
  };
  const sampler = setInterval(sample, 1000);

  const commands = createInterface({ input: process.stdin });
  commands.on('line', (line) => {
    const { cmd } = JSON.parse(line);
    if (cmd === 'stop') {
      // Stop producing; report once everything sent is acknowledged (hence delivered).
      stopping = true;
      const waitDrained = () => {
        const outstanding = [...flows.values()].reduce((n, f) => n + (f.ended === undefined ? f.outstanding : 0), 0);
        if (outstanding > 0) return void setTimeout(waitDrained, 50);
        out({ event: 'drained', t: Date.now() - started });
      };
      waitDrained();
    } else if (cmd === 'heap') {
      // The live heap: what survives full collections (two, so that what the first one freed and
      // finalised is gone too).
      if (global.gc) {
        global.gc();
        global.gc();
      }
      const m = process.memoryUsage();
      out({ event: 'heap', t: Date.now() - started, heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers, rss: m.rss, exposed: typeof global.gc === 'function' });
    } else if (cmd === 'report') {
      sample();
      const perConnection = {};
      for (const [id, f] of flows) perConnection[id] = { sent: f.sent, acked: f.acked, received: f.received, ended: f.ended };
      out({ event: 'report', perConnection, problems, net, totals });
    } else if (cmd === 'close') {
      for (const f of flows.values()) {
        f.closing = true;
        if (o.role === 'starter') f.conn.close();
      }
      clearInterval(sampler);
      setTimeout(() => {
        for (const s of subscriptions) s.unsubscribe();
        out({ event: 'closed' });
        process.exit(0);
      }, 200);
    }
  });
  commands.on('close', () => process.exit(problems.length === 0 ? 0 : 1));
}

// ---------------------------------------------------------------------------------------------
// The coordinator: starts both processes, runs, drains, compares, reports.

class Proc {
  constructor(name, args) {
    this.name = name;
    this.lines = [];
    this.waiters = [];
    this.stderr = '';
    this.child = spawn(process.execPath, [...PEER_NODE_ARGS, __filename, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.exited = new Promise((resolve) => this.child.once('close', (code, signal) => resolve(code ?? signal)));
    this.child.stderr.on('data', (d) => (this.stderr += d));
    createInterface({ input: this.child.stdout }).on('line', (text) => {
      let line;
      try {
        line = JSON.parse(text);
      } catch {
        return;
      }
      this.lines.push(line);
      for (const w of this.waiters.splice(0)) if (!w(line)) this.waiters.push(w);
    });
  }
  waitFor(event, ms, after = 0) {
    const found = this.lines.slice(after).find((l) => l.event === event);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no '${event}' within ${ms} ms; stderr: ${this.stderr.slice(-2000)}`)), ms);
      this.child.once('close', () => reject(new Error(`${this.name} exited before '${event}'; stderr: ${this.stderr.slice(-2000)}`)));
      this.waiters.push((line) => {
        if (line.event !== event) return false;
        clearTimeout(timer);
        resolve(line);
        return true;
      });
    });
  }
  send(cmd) {
    this.child.stdin.write(JSON.stringify({ cmd }) + '\n');
  }
  samples() {
    return this.lines.filter((l) => l.event === 'sample');
  }
}

const MB = 1024 * 1024;
const mb = (n) => (n / MB).toFixed(1); // MiB, written 'MB' in the output

async function coordinator(o) {
  if (!existsSync(DIST)) {
    process.stderr.write('soak: dist/ is missing: run `npm run build` first (npm run soak does)\n');
    process.exit(2);
  }
  const shared = ['--loss', o.loss, '--reorder', o.reorder, '--max-delay', o.maxDelay, '--max-size', o.maxSize, '--window', o.window, '--seed', o.seed, '--connections', o.connections].map(String);
  const log = (text) => process.stdout.write(`${text}\n`);
  log(`soak: ${o.connections} connections, ${o.seconds} s, loss ${o.loss * 100} %, reordering ${o.reorder * 100} % (up to ${o.maxDelay} ms), messages 0..${o.maxSize} bytes, ${o.window} in flight per connection and direction, seed ${o.seed}`);
  const listener = new Proc('listener', ['--role', 'listener', ...shared]);
  const failures = [];
  let starter;
  try {
    const { port } = await listener.waitFor('listening', 10_000);
    starter = new Proc('starter', ['--role', 'starter', '--port', String(port), ...shared]);
    const runMs = o.seconds * 1000;
    const startedAt = Date.now();
    let nextProgress = startedAt + Math.max(5000, runMs / 10);
    const warmupMs = Math.max(5000, runMs * 0.2);
    let heapAtWarmup;
    while (Date.now() - startedAt < runMs) {
      await new Promise((r) => setTimeout(r, 250));
      if (heapAtWarmup === undefined && Date.now() - startedAt >= warmupMs) {
        const seen = [starter.lines.length, listener.lines.length];
        starter.send('heap');
        listener.send('heap');
        heapAtWarmup = await Promise.all([starter.waitFor('heap', 10_000, seen[0]), listener.waitFor('heap', 10_000, seen[1])]);
      }
      if (Date.now() >= nextProgress) {
        nextProgress += Math.max(5000, runMs / 10);
        const a = starter.samples().at(-1);
        const b = listener.samples().at(-1);
        if (a && b) log(`  ${Math.round((Date.now() - startedAt) / 1000)} s: ${a.receivedMessages + b.receivedMessages} messages, ${mb(a.receivedBytes + b.receivedBytes)} MB delivered; RSS starter ${mb(a.rss)} MB, listener ${mb(b.rss)} MB; problems ${a.problems + b.problems}`);
      }
      if (starter.child.exitCode !== null || listener.child.exitCode !== null) throw new Error('a soak process exited during the run');
    }
    starter.send('stop');
    listener.send('stop');
    await Promise.all([starter.waitFor('drained', 60_000), listener.waitFor('drained', 60_000)]);
    const seen = [starter.lines.length, listener.lines.length];
    starter.send('heap');
    listener.send('heap');
    const heapAtEnd = await Promise.all([starter.waitFor('heap', 10_000, seen[0]), listener.waitFor('heap', 10_000, seen[1])]);
    starter.send('report');
    listener.send('report');
    const [ra, rb] = await Promise.all([starter.waitFor('report', 10_000), listener.waitFor('report', 10_000)]);
    const elapsed = (Date.now() - startedAt) / 1000;

    // Every message sent was received, once, in order, intact.
    for (const p of [...ra.problems.map((t) => `starter: ${t}`), ...rb.problems.map((t) => `listener: ${t}`)]) failures.push(p);
    const ids = Object.keys(ra.perConnection);
    if (ids.length !== o.connections) failures.push(`${ids.length} connections open at the starter, expected ${o.connections}`);
    if (Object.keys(rb.perConnection).length !== o.connections) failures.push(`${Object.keys(rb.perConnection).length} connections at the listener, expected ${o.connections}`);
    for (const id of ids) {
      const a = ra.perConnection[id];
      const b = rb.perConnection[id];
      if (!b) {
        failures.push(`connection ${id} unknown to the listener`);
        continue;
      }
      if (a.sent !== b.received) failures.push(`connection ${id}: starter sent ${a.sent}, listener received ${b.received}`);
      if (b.sent !== a.received) failures.push(`connection ${id}: listener sent ${b.sent}, starter received ${a.received}`);
      if (a.sent !== a.acked || b.sent !== b.acked) failures.push(`connection ${id}: not everything acknowledged`);
      if (a.ended !== undefined || b.ended !== undefined) failures.push(`connection ${id} ended during the run: ${a.ended ?? b.ended}`);
    }

    // Memory: the live heap at the end against the end of the warm-up; RSS growth after the
    // warm-up, and its maximum.
    const memory = {};
    for (const [i, name, proc] of [[0, 'starter', starter], [1, 'listener', listener]]) {
      const warmHeap = heapAtWarmup?.[i];
      const endHeap = heapAtEnd[i];
      if (!endHeap.exposed) failures.push(`${name}: gc() not exposed, the heap checks cannot run`);
      const heapGrowth = endHeap.heapUsed - (warmHeap?.heapUsed ?? endHeap.heapUsed);
      const heapEnd = endHeap.heapUsed + endHeap.arrayBuffers;
      if (warmHeap === undefined) failures.push(`${name}: no heap sample at the end of the warm-up`);
      if (heapGrowth > o.heapGrowthMb * MB) failures.push(`${name}: live heap grew ${mb(heapGrowth)} MB from the warm-up to the end (bound ${o.heapGrowthMb} MB)`);
      if (heapEnd > o.heapEndMb * MB) failures.push(`${name}: live heap + Buffers ${mb(heapEnd)} MB at the end (bound ${o.heapEndMb} MB)`);
      const samples = proc.samples();
      const warm = samples.filter((s) => s.t <= warmupMs + 1000 && s.t >= warmupMs - 1000);
      const afterWarm = samples.filter((s) => s.t > warmupMs);
      const base = warm.length > 0 ? Math.max(...warm.map((s) => s.rss)) : samples[0]?.rss ?? 0;
      const peak = Math.max(...samples.map((s) => s.rss));
      const peakAfter = afterWarm.length > 0 ? Math.max(...afterWarm.map((s) => s.rss)) : base;
      const growth = peakAfter - base;
      memory[name] = {
        atWarmupMb: +mb(base),
        peakMb: +mb(peak),
        endMb: +mb(samples.at(-1)?.rss ?? 0),
        growthMb: +mb(growth),
        liveHeapAtWarmupMb: +mb(warmHeap?.heapUsed ?? 0),
        liveHeapEndMb: +mb(endHeap.heapUsed),
        liveHeapGrowthMb: +mb(heapGrowth),
        buffersEndMb: +mb(endHeap.arrayBuffers),
      };
      if (growth > o.rssGrowthMb * MB) failures.push(`${name}: RSS grew ${mb(growth)} MB after the warm-up (bound ${o.rssGrowthMb} MB)`);
      if (peak > o.rssMaxMb * MB) failures.push(`${name}: RSS peaked at ${mb(peak)} MB (bound ${o.rssMaxMb} MB)`);
    }

    // RSS over time, about ten rows.
    const sa = starter.samples();
    const sb = listener.samples();
    const step = Math.max(1, Math.floor(Math.min(sa.length, sb.length) / 10));
    log('  time    messages   MB delivered   RSS starter   RSS listener   heap starter   heap listener');
    for (let i = 0; i < Math.min(sa.length, sb.length); i += step) {
      const a = sa[i];
      const b = sb[i];
      log(`  ${String(Math.round(a.t / 1000)).padStart(4)} s ${String(a.receivedMessages + b.receivedMessages).padStart(10)} ${mb(a.receivedBytes + b.receivedBytes).padStart(14)} ${(mb(a.rss) + ' MB').padStart(13)} ${(mb(b.rss) + ' MB').padStart(14)} ${(mb(a.heapUsed) + ' MB').padStart(14)} ${(mb(b.heapUsed) + ' MB').padStart(15)}`);
    }
    const messages = ra.totals.receivedMessages + rb.totals.receivedMessages;
    const bytes = ra.totals.receivedBytes + rb.totals.receivedBytes;
    const result = {
      ok: failures.length === 0,
      seconds: o.seconds,
      elapsedSeconds: +elapsed.toFixed(1),
      connections: o.connections,
      messages,
      bytes,
      throughputMBps: +(bytes / MB / elapsed).toFixed(2),
      messagesPerSecond: Math.round(messages / elapsed),
      datagrams: { starter: ra.net, listener: rb.net },
      memory,
      bounds: { heapGrowthMb: o.heapGrowthMb, heapEndMb: o.heapEndMb, rssGrowthMb: o.rssGrowthMb, rssMaxMb: o.rssMaxMb },
      failures: failures.slice(0, 20),
    };
    log(`soak: ${messages} messages (${mb(bytes)} MB) delivered in ${elapsed.toFixed(1)} s over ${o.connections} connections, ${result.throughputMBps} MB/s; ` +
      `datagrams dropped ${ra.net.dropped + rb.net.dropped} of ${ra.net.sent + rb.net.sent}, delayed ${ra.net.delayed + rb.net.delayed}`);
    log(`soak: live heap starter ${memory.starter.liveHeapAtWarmupMb} MB after warm-up, ${memory.starter.liveHeapEndMb} MB at the end (+ ${memory.starter.buffersEndMb} MB Buffers); listener ${memory.listener.liveHeapAtWarmupMb} MB, ${memory.listener.liveHeapEndMb} MB (+ ${memory.listener.buffersEndMb} MB) (bounds: growth ${o.heapGrowthMb} MB, end ${o.heapEndMb} MB)`);
    log(`soak: RSS starter ${memory.starter.atWarmupMb} MB after warm-up, peak ${memory.starter.peakMb} MB; listener ${memory.listener.atWarmupMb} MB, peak ${memory.listener.peakMb} MB (bounds: growth ${o.rssGrowthMb} MB, max ${o.rssMaxMb} MB)`);
    log(failures.length === 0 ? 'soak: PASS — no loss, duplicate, reorder, corruption or memory growth' : `soak: FAIL\n  ${failures.slice(0, 20).join('\n  ')}`);
    log(`SOAK-RESULT ${JSON.stringify(result)}`);
    starter.send('close');
    listener.send('close');
    await Promise.race([Promise.all([starter.exited, listener.exited]), new Promise((r) => setTimeout(r, 5000))]);
    process.exitCode = failures.length === 0 ? 0 : 1;
  } catch (error) {
    log(`soak: FAIL — ${error.message}`);
    log(`SOAK-RESULT ${JSON.stringify({ ok: false, failures: [error.message] })}`);
    process.exitCode = 1;
  } finally {
    for (const p of [starter, listener]) if (p && p.child.exitCode === null) p.child.kill('SIGKILL');
  }
}

const options = parseArgs(process.argv.slice(2));
if (options.role === 'coordinator') coordinator(options);
else peer(options);
