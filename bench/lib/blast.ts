/**
 * One-way UDP blasts for bench/bulk.ts: the paced blast that finds the loopback ceiling, and the
 * unpaced flood. Both child roles are driven by commands from the parent, so one pair of
 * processes can run many trials (the ceiling search) and a fresh pair can run one transfer.
 *
 * The sockets are set up as rx-rudp's Node adapter (lib/node/udp-socket.ts) sets up its own:
 * the receiver, like a listener, is bound to the host with `exclusive: true` and unconnected; the
 * sender, like a starter, is bound to port 0 and connected to its one peer; both then ask for
 * 4 MiB receive and send buffers. Every datagram goes out with `socket.send(data, callback)`,
 * the adapter's call on a connected socket.
 *
 * Clock: monotonic (process.hrtime, CLOCK_MONOTONIC), one clock for every process of the machine.
 */
import * as dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { cpuSeconds } from './common';
import { CommandBox, emit, type Message } from './proc';

/** Milliseconds on CLOCK_MONOTONIC: comparable between processes of one machine. */
export function monoMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** The kernel's caps on socket buffers a process may ask for (Linux), bytes; undefined elsewhere. */
export function socketBufferLimits(): Record<string, number | undefined> {
  const read = (name: string): number | undefined => {
    try {
      return Number(readFileSync(`/proc/sys/net/core/${name}`, 'utf8').trim());
    } catch {
      return undefined;
    }
  };
  return { rmemMax: read('rmem_max'), wmemMax: read('wmem_max'), rmemDefault: read('rmem_default'), wmemDefault: read('wmem_default') };
}

/**
 * Kernel drops of this machine's IPv4 UDP sockets (the `drops` column of /proc/net/udp: datagrams
 * that found the socket's receive buffer full) whose local port is in `localPorts` or that are
 * connected to 127.0.0.1 at a port in `remotePorts`. Undefined where /proc/net/udp is missing.
 */
export function udpSocketDrops(localPorts: readonly number[], remotePorts: readonly number[] = []): { drops: number; sockets: number } | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/net/udp', 'utf8');
  } catch {
    return undefined;
  }
  let drops = 0;
  let sockets = 0;
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 13) continue;
    const localPort = parseInt(f[1]!.split(':')[1]!, 16);
    const [remoteHost, remoteHex] = f[2]!.split(':') as [string, string];
    const remotePort = parseInt(remoteHex, 16);
    if (localPorts.includes(localPort) || (remoteHost === '0100007F' && remotePorts.includes(remotePort))) {
      drops += Number(f[12]);
      sockets++;
    }
  }
  return { drops, sockets };
}

export interface BlastReady extends Message {
  readonly port: number;
  readonly recvBuffer: number;
  readonly sendBuffer: number;
}

/** What the receiver saw of one trial. */
export interface BlastCollected extends Message {
  readonly trial: number;
  readonly datagrams: number;
  readonly bytes: number;
  readonly bad: number;
  /** Datagrams of other trials (late ones of the previous trial): not counted. */
  readonly stale: number;
  readonly first: number; // monoMs of the first datagram of the trial
  readonly last: number; // monoMs of the last one
  readonly cpu: number;
  readonly cpuUser: number;
  readonly cpuSystem: number;
}

/** What the sender did in one trial. */
export interface BlastSent extends Message {
  readonly trial: number;
  readonly datagrams: number; // sends whose callback reported success
  readonly bytes: number;
  readonly failed: number;
  readonly start: number; // monoMs of the first send
  readonly end: number; // monoMs when the last send's callback ran
  /** Times the schedule was pushed back because the sender was more than the allowed burst behind. */
  readonly slips: number;
  readonly cpu: number;
  readonly cpuUser: number;
  readonly cpuSystem: number;
}

/** Trial command: `rate` in payload bytes per second (Infinity: a flood), stop after `bytes` or `durationMs`. */
export interface BlastCommand extends Message {
  readonly type: 'blast';
  readonly trial: number;
  readonly size: number;
  readonly rate: number | null; // null = flood (JSON has no Infinity)
  readonly bytes?: number;
  readonly durationMs?: number;
}

const FILL = 0x5a;
/** At most this many sends waiting for their callback (libuv's queue), as the old flood did. */
const MAX_OUTSTANDING = 1024;
/** A paced sender that fell behind catches up by at most this much of its schedule at once (the larger of the two). */
const MAX_DEBT_MS = 4;
const MAX_DEBT_BYTES = 1024 * 1024;

function bytesOf(trial: number, size: number): Buffer {
  const b = Buffer.alloc(size, FILL);
  b.writeUInt32LE(trial >>> 0, 0);
  return b;
}

/** The receiving side: counts the datagrams of the current trial. */
export function blastReceiver(host: string, socketBuffer: number, box: CommandBox): void {
  const socket = dgram.createSocket({ type: 'udp4' });
  let trial = -1;
  let datagrams = 0;
  let bytes = 0;
  let bad = 0;
  let stale = 0;
  let first = 0;
  let last = 0;
  let cpu0 = process.cpuUsage();
  socket.on('message', (msg: Buffer) => {
    const t = monoMs();
    if (msg.length < 4 || msg.readUInt32LE(0) !== trial) {
      stale++;
      return;
    }
    if (datagrams === 0) first = t;
    datagrams++;
    bytes += msg.length;
    if (msg[msg.length - 1] !== FILL && msg.length > 4) bad++;
    last = t;
  });
  socket.on('error', (e) => emit({ type: 'error', message: `blast receiver: ${e.message}` }));
  socket.once('listening', () => {
    socket.setRecvBufferSize(socketBuffer);
    socket.setSendBufferSize(socketBuffer);
    emit({ type: 'ready', port: socket.address().port, recvBuffer: socket.getRecvBufferSize(), sendBuffer: socket.getSendBufferSize() });
  });
  socket.bind({ port: 0, address: host, exclusive: true });

  // The parent alternates strictly: arm, (the sender blasts), collect.
  void (async () => {
    for (;;) {
      const arm = await box.next<Message & { trial: number }>('arm');
      trial = arm.trial;
      datagrams = bytes = bad = stale = first = last = 0;
      cpu0 = process.cpuUsage();
      emit({ type: 'armed', trial });
      const command = await box.next<Message & { quietMs?: number }>('collect');
      // Collect once the trial's datagrams stopped coming: nothing new for quietMs (the socket
      // buffer has been read dry), or 3 s at most.
      const quietMs = (command['quietMs'] as number | undefined) ?? 60;
      const asked = monoMs();
      let seen = -1;
      let since = monoMs();
      while (monoMs() - asked < 3000) {
        if (datagrams !== seen) {
          seen = datagrams;
          since = monoMs();
        } else if (monoMs() - since >= quietMs) break;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const cpu = cpuSeconds(cpu0);
      const report: BlastCollected = { type: 'collected', trial, datagrams, bytes, bad, stale, first, last, cpu: cpu.total, cpuUser: cpu.user, cpuSystem: cpu.system };
      emit(report);
    }
  })();
}

/** The sending side: connects to the receiver, then blasts one trial per 'blast' command. */
export async function blastSender(host: string, port: number, socketBuffer: number, box: CommandBox): Promise<void> {
  const socket = dgram.createSocket({ type: 'udp4' });
  socket.on('error', (e) => emit({ type: 'error', message: `blast sender: ${e.message}` }));
  await new Promise<void>((resolve) => {
    socket.once('listening', resolve);
    socket.bind({ port: 0, exclusive: true });
  });
  await new Promise<void>((resolve) => socket.connect(port, host, resolve));
  socket.setRecvBufferSize(socketBuffer);
  socket.setSendBufferSize(socketBuffer);
  emit({ type: 'ready', port: socket.address().port, recvBuffer: socket.getRecvBufferSize(), sendBuffer: socket.getSendBufferSize() });
  for (;;) {
    const command = await box.next<BlastCommand>('blast');
    emit(await blastOnce(socket, command));
  }
}

function blastOnce(socket: dgram.Socket, c: BlastCommand): Promise<BlastSent> {
  return new Promise((resolve) => {
    const payload = bytesOf(c.trial, c.size);
    const limit = c.bytes !== undefined ? Math.ceil(c.bytes / c.size) : Infinity;
    const flood = c.rate === null || !Number.isFinite(c.rate);
    const perMs = flood ? Infinity : c.rate! / 1000 / c.size; // datagrams per ms
    const maxDebt = flood ? Infinity : Math.max(4, Math.ceil(perMs * MAX_DEBT_MS), Math.floor(MAX_DEBT_BYTES / c.size));
    let issued = 0;
    let ok = 0;
    let failed = 0;
    let outstanding = 0;
    let slips = 0;
    let stopped = false;
    let waiting = false;
    let finished = false;
    const cpu0 = process.cpuUsage();
    const start = monoMs();
    let origin = start; // schedule: datagram k is due at origin + k / perMs
    let originCount = 0;

    const finish = (): void => {
      if (finished) return;
      finished = true;
      const cpu = cpuSeconds(cpu0);
      resolve({ type: 'blasted', trial: c.trial, datagrams: ok, bytes: ok * c.size, failed, start, end: monoMs(), slips, cpu: cpu.total, cpuUser: cpu.user, cpuSystem: cpu.system });
    };
    const done = (error: Error | null): void => {
      if (error) failed++;
      else ok++;
      outstanding--;
      if (waiting && outstanding < MAX_OUTSTANDING / 4) {
        waiting = false;
        setImmediate(tick);
      }
      if (stopped && outstanding === 0) finish();
    };
    const tick = (): void => {
      const now = monoMs();
      if (c.durationMs !== undefined && now - start >= c.durationMs) stopped = true;
      if (issued >= limit) stopped = true;
      if (stopped) {
        if (outstanding === 0) finish();
        return;
      }
      let due = flood ? limit : Math.min(limit, originCount + Math.floor((now - origin) * perMs) + 1);
      if (due - issued > maxDebt) {
        // Fell behind (a pause of this process): move the schedule instead of bursting to catch up.
        slips++;
        origin = now;
        originCount = issued;
        due = issued + 1;
      }
      while (issued < due && outstanding < MAX_OUTSTANDING) {
        issued++;
        outstanding++;
        socket.send(payload, done);
      }
      if (outstanding >= MAX_OUTSTANDING) waiting = true; // resumed by a send callback
      else if (issued < due || flood) setImmediate(tick);
      else setTimeout(tick, Math.max(0, origin + (issued - originCount) / perMs - monoMs()));
    };
    tick();
  });
}
