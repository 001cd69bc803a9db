/**
 * Bulk transfer on loopback, sender and receiver in separate processes: rx-rudp (default 1200-byte
 * datagrams, and raised datagram sizes) vs Node `net` TCP vs a raw `node:dgram` one-way blast
 * (the ceiling: what arrives of 1200-byte datagrams sent as fast as Node can send them).
 *
 *   node bench/dist/bench/bulk.js [--quick] [--runs 3] [--mib 256] [--modes dgram,tcp,rudp,rudp-16k,rudp-64k]
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { EMPTY, concat, defer, ignoreElements, mergeMap, range, switchMap } from 'rxjs';
import { connect, listen, type Connection } from '../lib/index';
import { privateKeyFrom } from '../lib/core/secure/keys';
import {
  benchMain,
  cpuSeconds,
  fillByte,
  flagNumber,
  flagString,
  table,
  udpCounters,
  wallNow,
  type BenchResult,
  type Flags,
} from './lib/common';
import { Child, CommandBox, childGuard, emit, sleep, type Message } from './lib/proc';
import { fmt, median } from './lib/stats';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;
const HOST = '127.0.0.1';
const DGRAM_PAYLOAD = 1200;
const SOCKET_BUFFER = 4 * MIB; // what the rx-rudp adapter asks for, for a fair ceiling
const SEND_CONCURRENCY = 32; // messages in flight from the rx-rudp sender (mergeMap concurrency)
const SAMPLE_STRIDE = 1021; // verify one byte in every 1021 (hits every packet of every size used)

interface ModeSpec {
  readonly label: string;
  readonly kind: 'dgram' | 'tcp' | 'rudp';
  readonly maxDatagramSize?: number;
  readonly receiveWindow?: number;
  /** dgram: datagram payload size. */
  readonly payload?: number;
  /** The dgram mode whose goodput is this mode's ceiling. */
  readonly ceiling: string;
  /** rx-rudp with the secure extension (every packet sealed). */
  readonly secure?: boolean;
}

/** A fixed key for the secure modes: both child processes must know it, and nothing here is secret. */
const BENCH_PRIVATE_KEY = Buffer.alloc(32, 7).toString('base64');
const benchPublicKey = (): Buffer => privateKeyFrom('bench', BENCH_PRIVATE_KEY).publicKey;

const MODES: Record<string, ModeSpec> = {
  dgram: { label: 'node:dgram blast, 1200 B (ceiling)', kind: 'dgram', payload: 1200, ceiling: 'dgram' },
  'dgram-16k': { label: 'node:dgram blast, 16384 B (ceiling)', kind: 'dgram', payload: 16384, ceiling: 'dgram-16k' },
  'dgram-64k': { label: 'node:dgram blast, 65507 B (ceiling)', kind: 'dgram', payload: 65507, ceiling: 'dgram-64k' },
  tcp: { label: 'node:net TCP', kind: 'tcp', ceiling: 'dgram' },
  rudp: { label: 'rx-rudp, defaults (1200 B, window 1024)', kind: 'rudp', ceiling: 'dgram' },
  'rudp-16k': { label: 'rx-rudp, 16384 B datagrams, window 256', kind: 'rudp', maxDatagramSize: 16384, receiveWindow: 256, ceiling: 'dgram-16k' },
  'rudp-64k': { label: 'rx-rudp, 65507 B datagrams, window 64', kind: 'rudp', maxDatagramSize: 65507, receiveWindow: 64, ceiling: 'dgram-64k' },
  'rudp-secure': { label: 'rx-rudp, secure (sealed), 1200 B, window 1024', kind: 'rudp', ceiling: 'dgram', secure: true },
  'rudp-secure-64k': { label: 'rx-rudp, secure (sealed), 65507 B, window 64', kind: 'rudp', maxDatagramSize: 65507, receiveWindow: 64, ceiling: 'dgram-64k', secure: true },
};
const DEFAULT_MODES = ['dgram', 'dgram-16k', 'dgram-64k', 'tcp', 'rudp', 'rudp-16k', 'rudp-64k'];

interface SideReport {
  readonly cpu: number; // seconds, user + system, over the transfer
  readonly cpuUser: number;
  readonly cpuSystem: number;
  readonly rssMiB: number;
}

interface RunOutcome {
  readonly mode: string;
  readonly ok: boolean;
  readonly error?: string;
  readonly bytes: number; // verified bytes received
  readonly seconds: number; // sender start → last byte at the receiver
  readonly goodputMBs: number;
  readonly sender?: SideReport & Record<string, unknown>;
  readonly receiver?: SideReport & Record<string, unknown>;
  readonly lossPercent?: number; // dgram only
  /** System-wide UDP receive-buffer overflows during the run (/proc/net/snmp RcvbufErrors delta). */
  readonly kernelDrops?: number;
}

// ---- sub-process roles -------------------------------------------------------------------------

function spec(flags: Flags): ModeSpec {
  const mode = flagString(flags, 'mode') ?? '';
  const s = MODES[mode];
  if (s === undefined) throw new Error(`unknown --mode ${mode}`);
  return s;
}

function side(cpu0: NodeJS.CpuUsage): SideReport {
  const cpu = cpuSeconds(cpu0);
  return { cpu: cpu.total, cpuUser: cpu.user, cpuSystem: cpu.system, rssMiB: process.memoryUsage().rss / MIB };
}

/** A fresh 1 MiB message (the library may hold it until acknowledged, so never reused). */
function block(index: number): Buffer {
  return Buffer.alloc(MIB, fillByte(index));
}

async function receiver(flags: Flags): Promise<void> {
  const box = new CommandBox();
  childGuard(flagNumber(flags, 'limit', 120_000), box.handle);
  const s = spec(flags);
  const total = flagNumber(flags, 'total', 0);
  let bytes = 0;
  let bad = 0;
  let cpu0 = process.cpuUsage();
  let started = false;
  const start = (): void => {
    if (started) return;
    started = true;
    cpu0 = process.cpuUsage();
  };
  const finish = (extra: Record<string, unknown>): void => {
    emit({ type: 'done', bytes, bad, end: wallNow(), ...side(cpu0), ...extra });
  };

  if (s.kind === 'dgram') {
    const socket = dgram.createSocket('udp4');
    let datagrams = 0;
    let first = 0;
    let last = 0;
    socket.on('message', (msg) => {
      if (!started) {
        start();
        first = wallNow();
      }
      datagrams++;
      bytes += msg.length;
      last = wallNow();
    });
    socket.bind(0, HOST, () => {
      socket.setRecvBufferSize(SOCKET_BUFFER);
      emit({ type: 'ready', port: socket.address().port, recvBuffer: socket.getRecvBufferSize() });
    });
    await box.next('finish');
    const report = side(cpu0);
    emit({ type: 'done', bytes, bad, end: last, first, datagrams, ...report });
    return;
  }

  if (s.kind === 'tcp') {
    const server = net.createServer((socket) => {
      start();
      let position = 0;
      socket.on('data', (chunk: Buffer) => {
        for (let j = 0; j < chunk.length; j += SAMPLE_STRIDE) if (chunk[j] !== fillByte(Math.floor((position + j) / MIB))) bad++;
        const lastIndex = chunk.length - 1;
        if (chunk[lastIndex] !== fillByte(Math.floor((position + lastIndex) / MIB))) bad++;
        position += chunk.length;
        bytes = position;
        if (bytes >= total) finish({});
      });
      socket.on('error', (e) => emit({ type: 'error', message: `tcp receiver: ${e.message}` }));
    });
    server.listen(0, HOST, () => {
      const address = server.address() as net.AddressInfo;
      emit({ type: 'ready', port: address.port });
    });
    return;
  }

  let expected = 0;
  let connection: Connection | undefined;
  listen({
    host: HOST,
    port: 0,
    ...(s.maxDatagramSize === undefined ? {} : { maxDatagramSize: s.maxDatagramSize }),
    ...(s.receiveWindow === undefined ? {} : { receiveWindow: s.receiveWindow }),
    ...(s.secure === true ? { secure: { privateKey: BENCH_PRIVATE_KEY } } : {}),
    onListening: (address) => emit({ type: 'ready', port: address.port }),
  }).subscribe({
    next: (conn) => {
      connection = conn;
      start();
      conn.messages$.subscribe({
        next: (m) => {
          const b = fillByte(expected++);
          if (m.length !== MIB) bad++;
          for (let j = 0; j < m.length; j += SAMPLE_STRIDE) if (m[j] !== b) bad++;
          if (m[m.length - 1] !== b) bad++;
          bytes += m.length;
          if (bytes >= total) {
            const st = conn.stats;
            finish({
              messages: expected,
              packetsReceived: st.packetsReceived,
              duplicatesReceived: st.duplicatesReceived,
              droppedDatagrams: st.droppedDatagrams,
              acksSent: st.acksSent,
              repeatsSent: st.repeatsSent,
            });
          }
        },
        error: (e: Error) => emit({ type: 'error', message: `rudp receiver messages$: ${e.message}` }),
      });
    },
    error: (e: Error) => emit({ type: 'error', message: `rudp listen: ${e.message}` }),
  });
  void connection;
}

async function sender(flags: Flags): Promise<void> {
  const box = new CommandBox();
  childGuard(flagNumber(flags, 'limit', 120_000), box.handle);
  const s = spec(flags);
  const total = flagNumber(flags, 'total', 0);
  const port = flagNumber(flags, 'port', 0);
  const count = Math.ceil(total / MIB);

  if (s.kind === 'dgram') {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, HOST, resolve));
    socket.setSendBufferSize(SOCKET_BUFFER);
    const size = s.payload ?? DGRAM_PAYLOAD;
    const payload = Buffer.alloc(size, 0x5a);
    const datagrams = Math.ceil(total / size);
    const cpu0 = process.cpuUsage();
    const start = wallNow();
    let outstanding = 0;
    let failed = 0;
    let wake: (() => void) | undefined;
    const done = (error: Error | null): void => {
      if (error) failed++;
      outstanding--;
      if (wake !== undefined && outstanding < 256) {
        const w = wake;
        wake = undefined;
        w();
      }
    };
    // The same call the rx-rudp adapter makes (unconnected socket, address per send); at most
    // 1024 sends outstanding in libuv.
    for (let i = 0; i < datagrams; i++) {
      if (outstanding >= 1024) await new Promise<void>((resolve) => (wake = resolve));
      outstanding++;
      socket.send(payload, port, HOST, done);
    }
    while (outstanding > 0) await new Promise<void>((resolve) => (wake = resolve));
    emit({ type: 'done', start, end: wallNow(), sent: datagrams * size, datagrams, failed, ...side(cpu0) });
    return;
  }

  if (s.kind === 'tcp') {
    const socket = net.connect(port, HOST);
    socket.setNoDelay(false);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const cpu0 = process.cpuUsage();
    const start = wallNow();
    for (let i = 0; i < count; i++) {
      if (!socket.write(block(i))) await new Promise<void>((resolve) => socket.once('drain', resolve));
    }
    await new Promise<void>((resolve) => socket.end(resolve));
    emit({ type: 'done', start, end: wallNow(), ...side(cpu0) });
    await box.next('exit');
    socket.destroy();
    process.exit(0);
  }

  let cpu0 = process.cpuUsage();
  let start = 0;
  const subscription = connect({
    host: HOST,
    port,
    ...(s.maxDatagramSize === undefined ? {} : { maxDatagramSize: s.maxDatagramSize }),
    ...(s.receiveWindow === undefined ? {} : { receiveWindow: s.receiveWindow }),
    ...(s.secure === true ? { secure: { serverPublicKey: benchPublicKey() } } : {}),
  })
    .pipe(
      switchMap((conn) =>
        concat(
          defer(() => {
            cpu0 = process.cpuUsage();
            start = wallNow();
            // range is lazy under mergeMap's concurrency: at most SEND_CONCURRENCY messages exist at once.
            return range(0, count).pipe(
              mergeMap((i) => conn.send(block(i)), SEND_CONCURRENCY),
              ignoreElements(),
            );
          }),
          defer(() => {
            const st = conn.stats;
            emit({
              type: 'done',
              start,
              end: wallNow(),
              ...side(cpu0),
              packetsSent: st.packetsSent,
              dataPacketsSent: st.dataPacketsSent,
              retransmissions: st.retransmissions,
              repeatsAnswered: st.repeatsAnswered,
              rtt: st.rtt,
              rto: st.rto,
              congestionWindow: st.congestionWindow,
            });
            return EMPTY;
          }),
        ),
      ),
    )
    .subscribe({ error: (e: Error) => emit({ type: 'error', message: `rudp sender: ${e.message}` }) });
  await box.next('exit');
  subscription.unsubscribe();
  await sleep(50);
  process.exit(0);
}

// ---- orchestration -----------------------------------------------------------------------------

async function runOnce(mode: string, total: number, limitMs: number): Promise<RunOutcome> {
  const args = ['--mode', mode, '--total', String(total), '--limit', String(limitMs)];
  const recv = new Child(`bulk:${mode}:recv`, __filename, ['--role', 'recv', ...args], { timeoutMs: limitMs + 5000 });
  let send: Child | undefined;
  const udp0 = udpCounters();
  try {
    const ready = await recv.next<Message & { port: number }>('ready', 10_000);
    send = new Child(`bulk:${mode}:send`, __filename, ['--role', 'send', '--port', String(ready.port), ...args], { timeoutMs: limitMs + 5000 });
    const sent = await send.next<Message & { start: number; end: number } & SideReport & Record<string, unknown>>('done', limitMs);
    if (MODES[mode]!.kind === 'dgram') {
      await sleep(300); // let the last datagrams drain out of the socket buffer
      recv.send({ type: 'finish' });
    }
    const received = await recv.next<Message & { bytes: number; bad: number; end: number } & SideReport & Record<string, unknown>>('done', limitMs);
    const udp1 = udpCounters();
    const kernelDrops = udp0 && udp1 ? udp1.rcvbufErrors - udp0.rcvbufErrors : undefined;
    const seconds = (received.end - sent.start) / 1000;
    const ok = received.bad === 0 && (MODES[mode]!.kind === 'dgram' || received.bytes === total);
    const outcome: RunOutcome = {
      mode,
      ok,
      ...(ok ? {} : { error: `verification failed: ${received.bytes} of ${total} bytes, ${received.bad} bad samples` }),
      bytes: received.bytes,
      seconds,
      goodputMBs: received.bytes / 1e6 / seconds,
      sender: sent,
      receiver: received,
      ...(MODES[mode]!.kind === 'dgram' ? { lossPercent: 100 * (1 - received.bytes / Number(sent['sent'])) } : {}),
      ...(kernelDrops === undefined ? {} : { kernelDrops }),
    };
    return outcome;
  } catch (error) {
    return { mode, ok: false, error: error instanceof Error ? error.message.split('\n')[0]! : String(error), bytes: 0, seconds: NaN, goodputMBs: NaN };
  } finally {
    send?.send({ type: 'exit' });
    await Promise.all([send?.stop(1000), recv.stop(1000)]);
  }
}

async function run(flags: Flags): Promise<BenchResult> {
  const quick = flags.has('quick');
  const runs = flagNumber(flags, 'runs', quick ? 1 : 5);
  const mib = flagNumber(flags, 'mib', quick ? 64 : 256);
  const modes = (flagString(flags, 'modes') ?? DEFAULT_MODES.join(',')).split(',').filter((m) => m !== '');
  for (const m of modes) if (MODES[m] === undefined) throw new Error(`unknown mode ${m} (known: ${Object.keys(MODES).join(', ')})`);
  const total = mib * MIB;
  const limitMs = flagNumber(flags, 'run-limit', quick ? 30_000 : 60_000);
  const budgetMs = flagNumber(flags, 'budget', quick ? 120_000 : 360_000);
  const begun = Date.now();
  const skipped: string[] = [];

  const outcomes: RunOutcome[] = [];
  // Interleaved (run 1 of every mode, then run 2, …) so slow drifts of a noisy machine spread evenly.
  for (let r = 0; r < runs; r++) {
    for (const mode of modes) {
      if (Date.now() - begun > budgetMs) {
        skipped.push(`${mode} run ${r + 1}`);
        continue;
      }
      const outcome = await runOnce(mode, total, limitMs);
      process.stderr.write(
        `bulk run ${r + 1}/${runs} ${mode}: ${outcome.ok ? `${fmt(outcome.goodputMBs)} MB/s` : `FAILED ${outcome.error}`}\n`,
      );
      outcomes.push(outcome);
    }
  }

  const rows: string[][] = [];
  const summary: Record<string, unknown>[] = [];
  const byMode = (mode: string): RunOutcome[] => outcomes.filter((o) => o.mode === mode && o.ok);
  const goodput = (mode: string): number => median(byMode(mode).map((o) => o.goodputMBs));
  const tcp = goodput('tcp');
  for (const mode of modes) {
    const ok = byMode(mode);
    const all = outcomes.filter((o) => o.mode === mode);
    const g = goodput(mode);
    const ceiling = goodput(MODES[mode]!.ceiling);
    const gib = (o: RunOutcome): number => o.bytes / GIB;
    const sendCpu = median(ok.map((o) => (o.sender?.cpu ?? NaN) / gib(o)));
    const recvCpu = median(ok.map((o) => (o.receiver?.cpu ?? NaN) / gib(o)));
    const retx = median(ok.map((o) => 100 * Number(o.sender?.['retransmissions'] ?? NaN) / Number(o.sender?.['dataPacketsSent'] ?? NaN)));
    const spurious = median(ok.map((o) => 100 * Number(o.receiver?.['duplicatesReceived'] ?? NaN) / Number(o.sender?.['dataPacketsSent'] ?? NaN)));
    const kernel = median(ok.map((o) => o.kernelDrops ?? NaN));
    const loss = median(ok.map((o) => o.lossPercent ?? NaN));
    const spread = ok.length > 1 ? `${fmt(Math.min(...ok.map((o) => o.goodputMBs)))}–${fmt(Math.max(...ok.map((o) => o.goodputMBs)))}` : '';
    rows.push([
      MODES[mode]!.label,
      `${ok.length}/${all.length}`,
      fmt(g),
      spread,
      MODES[mode]!.kind === 'tcp' ? '1.00' : fmt(g / tcp, 2),
      MODES[mode]!.kind === 'dgram' ? '1.00' : `${fmt(g / ceiling, 2)}${MODES[mode]!.kind === 'tcp' ? ' (vs 1200 B)' : ''}`,
      fmt(sendCpu, 2),
      fmt(recvCpu, 2),
      MODES[mode]!.kind === 'rudp' ? `${fmt(retx, 2)} (${fmt(spurious, 2)})` : MODES[mode]!.kind === 'dgram' ? `lost ${fmt(loss, 1)} %` : '',
      fmt(kernel, 0),
    ]);
    summary.push({
      mode,
      label: MODES[mode]!.label,
      okRuns: ok.length,
      runs: all.length,
      goodputMBs: g,
      goodputRuns: ok.map((o) => o.goodputMBs),
      vsTcp: g / tcp,
      vsCeiling: g / ceiling,
      senderCpuSecPerGiB: sendCpu,
      receiverCpuSecPerGiB: recvCpu,
      retransmitPercent: MODES[mode]!.kind === 'rudp' ? retx : undefined,
      spuriousRetransmitPercent: MODES[mode]!.kind === 'rudp' ? spurious : undefined,
      kernelRcvbufDrops: kernel,
      dgramLossPercent: MODES[mode]!.kind === 'dgram' ? loss : undefined,
      errors: all.filter((o) => !o.ok).map((o) => o.error),
    });
  }
  const failures = outcomes.filter((o) => !o.ok);
  const markdown = [
    `### Bulk transfer, loopback, two processes: ${mib} MiB as 1 MiB messages, median of ${runs} run(s)`,
    '',
    table(['transport', 'ok runs', 'goodput MB/s', 'range', '× TCP', '× ceiling', 'send CPU s/GiB', 'recv CPU s/GiB', 'retx % (spurious %) / loss', 'kernel rcvbuf drops'], rows),
    '',
    `Goodput = verified bytes / (sender's first write → receiver's last byte), 1 MB = 10⁶ B. CPU = process.cpuUsage() (user+system) of each child over its transfer. ` +
      `rx-rudp sender: \`range(0, n).pipe(mergeMap(i => conn.send(block), ${SEND_CONCURRENCY}))\`; receiver checks length, order and one byte in ${SAMPLE_STRIDE} of every message. ` +
      `Retx % = retransmitted / DATA packets sent; spurious = duplicates the receiver got (retransmissions of packets that had arrived). Kernel rcvbuf drops = system-wide /proc/net/snmp Udp RcvbufErrors delta over the run (median). ` +
      `× ceiling compares with the blast of the same datagram size. Ceiling: one-way blast of datagrams from an unconnected node:dgram socket (the adapter's call), ≤ 1024 sends outstanding, ${SOCKET_BUFFER / MIB} MiB socket buffers; goodput counts what arrived.`,
    ...(failures.length > 0 ? ['', '**Failed runs:**', ...failures.map((f) => `- ${f.mode}: ${f.error}`)] : []),
    ...(skipped.length > 0 ? ['', `**Skipped (time budget of ${budgetMs / 1000} s spent):** ${skipped.join(', ')}`] : []),
  ].join('\n');
  return { name: 'bulk', title: 'Bulk transfer', markdown, data: {
      mib,
      runs,
      summary,
      // Per run, compact: mode, goodput MB/s, seconds, CPU s sender/receiver, retransmissions, receiver duplicates, kernel drops, dgram loss %, error.
      runsDetail: outcomes.map((o) => [
        o.mode,
        o.goodputMBs,
        o.seconds,
        o.sender?.cpu ?? null,
        o.receiver?.cpu ?? null,
        o.sender?.['retransmissions'] ?? null,
        o.receiver?.['duplicatesReceived'] ?? null,
        o.kernelDrops ?? null,
        o.lossPercent ?? null,
        o.error ?? null,
      ]),
      skipped,
    }, seconds: 0 };
}

benchMain((flags) => (flags.has('quick') ? 8 : 30) * 60_000, run, { recv: receiver, send: sender });
