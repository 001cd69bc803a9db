/**
 * listenCluster(): worker processes (spec/fixtures/cluster-echo-worker.js, on the built dist/)
 * sharing one port on 127.0.0.1. Each worker echoes with its index in front, so a starter knows
 * which worker served it. Where ports cannot be shared (Node 20), the cluster must refuse with
 * ReusePortUnsupportedError instead of running on one core.
 */
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { firstValueFrom, lastValueFrom, map, take, toArray, type Subscription } from 'rxjs';
import { ConnectionTimeoutError, open, type Connection, type DatagramSocket, type SocketFactory } from '../../lib/index';
import { udpSocketFactory } from '../../lib/node/udp-socket';
import { ClusterError, listenCluster, ReusePortUnsupportedError, type Cluster, type WorkerExit } from '../../lib/cluster/index';
import { reusePortUnavailable } from '../../lib/node/reuse-port';
import { ensureBuilt } from '../hardening/helpers';
import { within } from '../integration/helpers';

jest.setTimeout(60_000);

const WORKER = join(__dirname, '..', 'fixtures', 'cluster-echo-worker.js');
const HOST = '127.0.0.1';
const canShare = reusePortUnavailable() === undefined;

beforeAll(() => ensureBuilt(), 120_000);

const connections: Connection[] = [];
let subscription: Subscription | undefined;
let running: Cluster | undefined;

afterEach(async () => {
  for (const c of connections.splice(0)) c.close();
  await running?.close();
  subscription?.unsubscribe();
  running = undefined;
  subscription = undefined;
});

/** Starts a cluster of `workers`; resolves once every worker listens. */
function startCluster(workers: number, args: string[] = []): Promise<Cluster> {
  return within(
    new Promise<Cluster>((resolve, reject) => {
      subscription = listenCluster({ worker: WORKER, workers, host: HOST, port: 0, args, execArgv: [] }).subscribe({
        next: (cluster) => {
          running = cluster;
          resolve(cluster);
        },
        error: reject,
      });
    }),
    20_000,
    `${workers} workers listening`,
  );
}

/** Opens a connection (its own socket, so its own source port) and learns which worker serves it. */
async function openTagged(port: number, options: { pingInterval?: number; pingPacketCount?: number } = {}): Promise<{ connection: Connection; worker: number; sent: () => number }> {
  // Counts every datagram the starter's socket sends (the CONNECT included, which no connection counts).
  let sent = 0;
  const socketFactory: SocketFactory = (bind) =>
    udpSocketFactory(bind).pipe(map((socket): DatagramSocket => ({ datagrams$: socket.datagrams$, address: () => socket.address(), send: (...args) => (sent++, socket.send(...args)) })));
  const connection = await open({ host: HOST, port, socketFactory, ...options });
  connections.push(connection);
  return { connection, worker: await echoWorker(connection, 'hello'), sent: () => sent };
}

/** Sends one message; resolves with the index of the worker that echoed it. */
async function echoWorker(connection: Connection, text: string): Promise<number> {
  const reply = firstValueFrom(connection.messages$);
  connection.send$.next(Buffer.from(text));
  const message = await within(reply, 5000, `the echo of '${text}'`);
  expect(Buffer.from(message.subarray(1)).toString()).toBe(text);
  return message[0]!;
}

async function eventually(check: () => Promise<boolean>, ms: number, what: () => string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

if (!canShare) {
  test(`on Node ${process.versions.node}: listenCluster errors with ReusePortUnsupportedError, saying what to do`, async () => {
    const error = await firstValueFrom(listenCluster({ worker: WORKER, workers: 2, host: HOST })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReusePortUnsupportedError);
    expect((error as Error).message).toMatch(/reusePort needs Node 22\.12, 23\.1 or later.*upgrade Node, or run a single listener/);
  });
} else {
  test('every datagram of a connection reaches the worker that accepted it; both workers serve', async () => {
    const cluster = await startCluster(2);
    const served = await Promise.all(Array.from({ length: 30 }, () => openTagged(cluster.address.port)));
    // Each connection's later messages all come back from its first worker.
    for (const { connection, worker } of served) {
      for (let i = 0; i < 5; i++) expect(await echoWorker(connection, `message ${i}`)).toBe(worker);
    }
    const perWorker = [0, 1].map((w) => served.filter((s) => s.worker === w).length);
    // 30 random source ports all hashed to one socket: 2^-29.
    expect(perWorker[0]).toBeGreaterThan(0);
    expect(perWorker[1]).toBeGreaterThan(0);
    const stats = await cluster.stats();
    expect(stats.workers.map((w) => w.accepted)).toEqual(perWorker);
    // No datagram of an open connection reached a worker that does not know it.
    expect(stats.endpoint.strangerDatagrams).toBe(0);
  });

  test("stats add up: each worker's datagrams are what its starters sent, and the totals are the sums", async () => {
    const cluster = await startCluster(2);
    const served = await Promise.all(Array.from({ length: 20 }, () => openTagged(cluster.address.port)));
    await Promise.all(served.map(async ({ connection }, i) => {
      for (let k = 0; k <= i % 4; k++) await echoWorker(connection, `${i}/${k}`);
    }));
    const sentTo = (w: number): number => served.filter((s) => s.worker === w).reduce((sum, s) => sum + s.sent(), 0);
    // Pings and acks may be on their way at any instant: compare once the counts meet.
    let last = '';
    await eventually(async () => {
      const stats = await cluster.stats();
      last = JSON.stringify({ received: stats.workers.map((w) => w.endpoint.datagramsReceived), sent: [sentTo(0), sentTo(1)] });
      return stats.workers.length === 2 && stats.workers.every((w) => w.endpoint.datagramsReceived === sentTo(w.index));
    }, 5000, () => `per-worker datagram counts to match the starters' (last: ${last})`);
    const stats = await cluster.stats();
    expect(stats.connections).toBe(20);
    expect(stats.accepted).toBe(20);
    expect(stats.workers.map((w) => w.connections)).toEqual([0, 1].map((w) => served.filter((s) => s.worker === w).length));
    expect(stats.endpoint.datagramsReceived).toBe(stats.workers[0]!.endpoint.datagramsReceived + stats.workers[1]!.endpoint.datagramsReceived);
    for (const w of stats.workers) {
      expect(w.pid).toBe(cluster.workers[w.index]!.pid);
      expect(w.cpuUser + w.cpuSystem).toBeGreaterThan(0);
      expect(w.rssBytes).toBeGreaterThan(0);
    }
  });

  test("a worker's crash ends only its connections (ConnectionTimeoutError); the others keep working", async () => {
    const cluster = await startCluster(2);
    const exits = firstValueFrom(cluster.exits$);
    const served = await Promise.all(Array.from({ length: 24 }, () => openTagged(cluster.address.port, { pingInterval: 250, pingPacketCount: 3 })));
    const victim = served[0]!.worker;
    const doomed = served.filter((s) => s.worker === victim);
    const survivors = served.filter((s) => s.worker !== victim);
    expect(survivors.length).toBeGreaterThan(0);
    const victimPid = cluster.workers.find((w) => w.index === victim)!.pid;

    process.kill(victimPid, 'SIGKILL');
    expect(await within(exits, 5000, 'the exit report')).toEqual<WorkerExit>({ index: victim, pid: victimPid, code: null, signal: 'SIGKILL' });
    expect(cluster.workers.map((w) => w.index)).toEqual([1 - victim]);

    const ends = await within(Promise.all(doomed.map(({ connection }) => firstValueFrom(connection.closed$))), 10_000, "the dead worker's connections ending");
    for (const end of ends) expect(end.error).toBeInstanceOf(ConnectionTimeoutError);
    // Well after those timeouts, the other worker's connections are open and still echo.
    for (const { connection } of survivors) {
      expect(await firstValueFrom(connection.state$)).toBe('open');
      expect(await echoWorker(connection, 'still here')).toBe(1 - victim);
    }
    const stats = await cluster.stats();
    expect(stats.workers.map((w) => w.index)).toEqual([1 - victim]);
    expect(stats.connections).toBe(survivors.length);
  });

  test('a port held by a socket that does not share it: ClusterError from the first worker, with the hint', async () => {
    const holder = createSocket('udp4');
    await new Promise<void>((resolve) => holder.bind(0, HOST, resolve));
    try {
      const error = await firstValueFrom(listenCluster({ worker: WORKER, workers: 2, host: HOST, port: holder.address().port, execArgv: [] })).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ClusterError);
      expect(error).toMatchObject({ workerIndex: 0, message: expect.stringMatching(/^worker 0 could not listen: .*EADDRINUSE.*held by a socket that does not share it/) });
    } finally {
      holder.close();
    }
  });

  test('a worker module that cannot run: ClusterError saying it exited before it listened', async () => {
    const error = await firstValueFrom(listenCluster({ worker: join(__dirname, 'no-such-worker.js'), workers: 2, host: HOST, execArgv: [], startTimeout: 20_000 })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClusterError);
    expect((error as Error).message).toMatch(/^worker 0 \(.*no-such-worker\.js\) exited with code 1 before it listened: run it alone to see why$/);
  });

  test('close(): each worker closes its connections (CLOSE reason 4, peer shutting down) and exits', async () => {
    const cluster = await startCluster(2);
    const served = await Promise.all(Array.from({ length: 8 }, () => openTagged(cluster.address.port)));
    const pids = cluster.workers.map((w) => w.pid);
    const ends = Promise.all(served.map(({ connection }) => firstValueFrom(connection.closed$)));
    const exits = lastValueFrom(cluster.exits$.pipe(take(2), toArray()), { defaultValue: [] });
    await within(cluster.close(), 10_000, 'every worker exiting');
    running = undefined;
    for (const end of await within(ends, 5000, 'the CLOSE of every connection')) {
      expect(end).toMatchObject({ reason: 4, byPeer: true });
    }
    // Stopped, not crashed: no exit is reported, and no worker process is left.
    expect(await exits).toEqual([]);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  });
}

test('listenCluster checks its options when called', () => {
  expect(() => listenCluster({ worker: WORKER, workers: 0 })).toThrow(/option workers = 0 is invalid: expected a whole number from 1 to 1024/);
  expect(() => listenCluster({ worker: '' })).toThrow(/option worker = {2}is invalid: expected the path of a module that calls clusterWorker\(\)/);
  expect(() => listenCluster({ worker: WORKER, port: 70000 })).toThrow(/option port = 70000 is invalid/);
});
