/**
 * Idle connections on the testing kit's VirtualNetwork, in virtual time, in one process: a
 * listener and N starters (10,000 per virtual host), opened, then left idle for 10 virtual
 * seconds (so every heartbeat has pinged and been answered). Reports the live heap after full GCs
 * per connection (a pair is a listener-side and a starter-side connection, with the starter's
 * socket), RSS, the heap of one listener-side connection alone (measured by closing the starters'
 * sockets without a word, which leaves the listener's connections up until their ping timeout),
 * and the virtual scheduler's pending actions (one endpoint-wide timer instead of one per deadline).
 *
 * A role of many.ts (`--role idle --idle N`), run with --expose-gc.
 */
import { Subscription, type SchedulerAction, type SchedulerLike } from 'rxjs';
import type { Connection } from '../lib/index';
import { VirtualNetwork, connect, listen } from '../lib/testing/index';
import { watchGc } from './lib/common';
import { emit } from './lib/proc';

const MIB = 1024 * 1024;
const PER_HOST = 10_000;

export interface IdleReport {
  readonly connections: number;
  readonly open: number;
  /** Live heap (heapUsed + arrayBuffers after GCs) per pair, bytes. */
  readonly heapPerPair: number;
  /** Live heap of the listener-side connections alone, per connection, bytes. */
  readonly heapPerListenerConnection: number;
  readonly heapMiB: number;
  readonly rssMiB: number;
  /** Pending actions on the virtual scheduler while all are idle. */
  readonly scheduledActions: number;
  readonly openSeconds: number;
}

/**
 * Virtual time with a heap of actions. rxjs's VirtualTimeScheduler sorts its whole action list on
 * every schedule(): with 100,000 connections' handshakes and pings in flight that is quadratic.
 */
class HeapScheduler implements SchedulerLike {
  private time = 0;
  private seq = 0;
  /** Actions ever scheduled or rescheduled. */
  scheduled = 0;
  private readonly heap: HeapAction[] = [];

  now(): number {
    return this.time;
  }

  schedule<T>(work: (this: SchedulerAction<T>, state?: T) => void, delay = 0, state?: T): Subscription {
    return new HeapAction<T>(this, work).schedule(state, delay);
  }

  /** @internal */
  push(action: HeapAction, delay: number): void {
    this.scheduled++;
    action.at = this.time + Math.max(0, delay);
    action.order = this.seq++;
    const heap = this.heap;
    let i = heap.push(action) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(action, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = action;
  }

  /** Pending actions not cancelled. */
  get pending(): number {
    return this.heap.filter((a) => !a.closed && a.queued).length;
  }

  /** Runs everything due up to now + `ms`, then sets the clock there. */
  advance(ms: number): void {
    const until = this.time + ms;
    const heap = this.heap;
    while (heap.length > 0 && heap[0]!.at <= until) {
      const action = this.pop();
      if (action.closed || !action.queued || action.at !== action.dueAt) continue;
      this.time = action.at;
      action.run();
    }
    this.time = until;
  }

  private pop(): HeapAction {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= heap.length) break;
        const c = l + 1 < heap.length && before(heap[l + 1]!, heap[l]!) ? l + 1 : l;
        if (!before(heap[c]!, last)) break;
        heap[i] = heap[c]!;
        i = c;
      }
      heap[i] = last;
    }
    return top;
  }
}

function before(a: HeapAction, b: HeapAction): boolean {
  return a.at < b.at || (a.at === b.at && a.order < b.order);
}

class HeapAction<T = unknown> extends Subscription implements SchedulerAction<T> {
  at = 0;
  order = 0;
  /** The time of the latest schedule(): an older heap entry of a rescheduled action is skipped. */
  dueAt = -1;
  queued = false;
  private state: T | undefined;

  constructor(
    private readonly scheduler: HeapScheduler,
    private readonly work: (this: SchedulerAction<T>, state?: T) => void,
  ) {
    super();
  }

  schedule(state?: T, delay = 0): Subscription {
    if (this.closed) return this;
    this.state = state;
    this.queued = true;
    this.scheduler.push(this as HeapAction, delay);
    this.dueAt = this.at;
    return this;
  }

  run(): void {
    this.queued = false;
    this.work(this.state);
    if (!this.queued) this.unsubscribe();
  }
}

function liveHeap(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  for (let i = 0; i < 4; i++) gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** `atIdle` runs once every connection is open and idle (a heap snapshot, say). */
export function idle(n: number, atIdle?: () => void): IdleReport {
  const scheduler = new HeapScheduler();
  const network = new VirtualNetwork({ scheduler });
  const advance = (ms: number): void => scheduler.advance(ms);
  const port = 7000;
  const accepted: Connection[] = [];
  const listening = listen(network, { host: '10.0.0.1', port, maxConnections: n + 1 }).subscribe((c) => accepted.push(c));
  advance(1);
  const base = liveHeap();
  const t0 = performance.now();
  const starters: Subscription[] = [];
  let open = 0;
  for (let i = 0; i < n; i++) {
    const from = `10.1.${Math.floor(i / PER_HOST) >> 8}.${Math.floor(i / PER_HOST) & 255}`;
    starters.push(connect(network, { from, host: '10.0.0.1', port }).subscribe({ next: () => void open++, error: () => undefined }));
    if (i % 1000 === 999) advance(1);
  }
  advance(100);
  const openSeconds = (performance.now() - t0) / 1000;
  advance(10_000);
  const scheduledActions = scheduler.pending;
  atIdle?.();
  const withPairs = liveHeap();
  const rss = process.memoryUsage().rss;
  // The starters' sockets go without a CLOSE: their connections are garbage, the listener's stay
  // up (silent peers, pinged) until the ping timeout, 6 s away.
  for (const c of accepted) network.failSocket(c.remote.address, c.remote.port, new Error('gone'));
  for (const s of starters) s.unsubscribe(); // their sockets are closed already: nothing is sent
  advance(1);
  const listenerOnly = liveHeap();
  listening.unsubscribe();
  advance(1);
  return {
    connections: n,
    open,
    heapPerPair: (withPairs - base) / n,
    heapPerListenerConnection: (listenerOnly - base) / n,
    heapMiB: withPairs / MIB,
    rssMiB: rss / MIB,
    scheduledActions,
    openSeconds,
  };
}

export interface VirtualEchoReport {
  readonly connections: number;
  readonly seconds: number;
  readonly sent: number;
  readonly echoed: number;
  /** Process CPU (both ends, no syscalls: the network is in-process) per echoed message, µs. */
  readonly cpuMicrosPerMessage: number;
  readonly datagramsPerMessage: number;
  readonly pings: number;
  /** Scheduler actions scheduled per echoed message (timers, the network's deliveries, the send steps). */
  readonly actionsPerMessage: number;
  /** Collections per 1,000 messages (mostly young-generation: how much was allocated), and their time. */
  readonly gcPer1k: { count: number; ms: number };
}

/**
 * The many.ts load in virtual time: N pairs, each starter sending 100 bytes once a virtual second
 * (at a per-message jitter of 0..20 ms, as real timers are late), the listener echoing, 1 ms each
 * way. Deterministic work, so the CPU per message compares builds on a busy machine, where the
 * loopback run cannot.
 */
export async function virtualEcho(n: number, seconds: number): Promise<VirtualEchoReport> {
  const scheduler = new HeapScheduler();
  const network = new VirtualNetwork({ scheduler, default: { delay: 1 } });
  const port = 7000;
  const listening = listen(network, { host: '10.0.0.1', port, maxConnections: n + 1 }).subscribe((c) => {
    c.messages$.subscribe({ next: (m) => c.send$.next(m), error: () => undefined });
  });
  const conns: Connection[] = [];
  const starters: Subscription[] = [];
  let echoed = 0;
  for (let i = 0; i < n; i++) {
    const from = `10.1.${Math.floor(i / PER_HOST) >> 8}.${Math.floor(i / PER_HOST) & 255}`;
    starters.push(
      connect(network, { from, host: '10.0.0.1', port }).subscribe({
        next: (c) => {
          conns.push(c);
          c.messages$.subscribe({ next: () => void echoed++, error: () => undefined });
        },
        error: () => undefined,
      }),
    );
    if (i % 1000 === 999) scheduler.advance(1);
  }
  scheduler.advance(2000);
  let seed = 12345;
  const jitter = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 21);
  const payload = new Uint8Array(100);
  let sent = 0;
  const pingsBefore = conns.reduce((a, c) => a + c.stats.pingsSent, 0);
  const datagramsBefore = network.stats().total.sent;
  const actions0 = scheduler.scheduled;
  const gc = watchGc();
  const cpu0 = process.cpuUsage();
  const echoed0 = echoed;
  // Connection i sends at (its slot in the second) + jitter, every second.
  for (let s = 0; s < seconds; s++) {
    conns.forEach((c, i) => {
      scheduler.schedule(() => {
        c.send$.next(payload.slice());
        sent++;
      }, Math.floor((i * 1000) / conns.length) + jitter());
    });
    scheduler.advance(1000);
  }
  scheduler.advance(1000);
  const cpu = process.cpuUsage(cpu0);
  const actions = scheduler.scheduled - actions0;
  await new Promise((resolve) => setImmediate(resolve)); // the GC observer's last entries
  const gcs = gc();
  const pings = conns.reduce((a, c) => a + c.stats.pingsSent, 0) - pingsBefore;
  const datagrams = network.stats().total.sent - datagramsBefore;
  const got = echoed - echoed0;
  for (const s of starters) s.unsubscribe();
  listening.unsubscribe();
  scheduler.advance(1);
  return {
    connections: n,
    seconds,
    sent,
    echoed: got,
    cpuMicrosPerMessage: (cpu.user + cpu.system) / got,
    datagramsPerMessage: datagrams / got,
    pings,
    actionsPerMessage: actions / got,
    gcPer1k: { count: (1000 * gcs.count) / got, ms: (1000 * gcs.totalMs) / got },
  };
}

export async function virtualRole(n: number, seconds: number): Promise<void> {
  await Promise.resolve();
  emit({ type: 'report', report: await virtualEcho(n, seconds) });
}

export async function idleRole(n: number): Promise<void> {
  await Promise.resolve();
  emit({ type: 'report', report: idle(n) });
}
