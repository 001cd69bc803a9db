import { fork, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { Observable, Subject } from 'rxjs';
import { emptyEndpointStats, type EndpointStats } from '../core/endpoint';
import { InvalidOptionError } from '../core/errors';
import type { SocketAddress } from '../core/transport';
import { ReusePortUnsupportedError, reusePortUnavailable } from '../node/reuse-port';
import { ClusterError } from './errors';
import { WORKER_ROLE_ENV, isFromWorker, type FromWorker, type ToWorker, type WorkerReport, type WorkerRole } from './messages';

export interface ClusterOptions {
  /** The module each worker process runs (a path); it calls `clusterWorker()` and serves its connections. */
  worker: string;
  /** Worker processes, each with its own socket on the one port. Default: the number of cores (os.availableParallelism()). */
  workers?: number;
  /** Arguments for the worker module (its process.argv.slice(2)). Default none. */
  args?: readonly string[];
  /** Node flags for the workers. Default: this process's (process.execArgv), as child_process.fork does. */
  execArgv?: readonly string[];
  /** Environment of the workers. Default: this process's. */
  env?: NodeJS.ProcessEnv;
  /** Local address the workers bind; default '0.0.0.0' (use '::' for IPv6). */
  host?: string;
  /** Local port; 0 (the default) lets the first worker pick one, which the others then share. */
  port?: number;
  /** How long a worker may take to start and bind, in ms. Default 10000. */
  startTimeout?: number;
  /** On stop, how long workers get to close their connections before they are killed, in ms. Default 5000. */
  stopTimeout?: number;
}

/** A worker process of a cluster. */
export interface ClusterWorker {
  /** 0 .. workers - 1, in start order. */
  readonly index: number;
  readonly pid: number;
}

/** A worker that exited while the cluster ran (it was not stopped): a crash, a kill, process.exit(). */
export interface WorkerExit extends ClusterWorker {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** One worker's figures (see ClusterStats). */
export interface WorkerStats extends ClusterWorker, WorkerReport {}

/** A cluster's figures: every live worker's, and their sums. */
export interface ClusterStats {
  /** The workers' endpoint counters, added up. */
  readonly endpoint: EndpointStats;
  /** Connections open now, over all workers. */
  readonly connections: number;
  /** Connections accepted, over the live workers. */
  readonly accepted: number;
  readonly workers: readonly WorkerStats[];
}

/** A running cluster, as listenCluster() emits it. */
export interface Cluster {
  /** The address and port every worker listens on. */
  readonly address: SocketAddress;
  /** The workers still running. */
  readonly workers: readonly ClusterWorker[];
  /**
   * Workers that exit while the cluster runs, one emission each; completes when the cluster
   * stops. They are not restarted: a new socket joining the port's group would make the kernel
   * move some live connections to it.
   */
  readonly exits$: Observable<WorkerExit>;
  /** Asks every live worker for its figures (a worker that does not answer within 2 s is left out). */
  stats(): Promise<ClusterStats>;
  /** Stops the cluster as unsubscribing does; resolves once every worker process has exited. */
  close(): Promise<void>;
}

const STATS_TIMEOUT_MS = 2000;

interface Member {
  readonly index: number;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly exited: Promise<void>;
  alive: boolean;
}

/**
 * Runs `workers` listener processes on one UDP port (Linux SO_REUSEPORT, `dgram` `reusePort`):
 * the kernel spreads starters over them by source address and port, so every datagram of a
 * connection reaches the worker that accepted it. Each worker runs the module `worker`, which
 * calls `clusterWorker()` and handles its own connections (a connection cannot cross processes);
 * this process supervises: it starts them, collects their stats, and reports their exits.
 *
 * Subscribing starts the first worker (which picks the port when 0 was asked), then the others,
 * and emits the Cluster once all of them listen. Errors with ReusePortUnsupportedError where ports
 * cannot be shared (Node before 22.12 / 23.1, or not Linux: never a silent single-core run), and
 * with ClusterError when a worker fails to start or bind (the others are stopped), or when the
 * last worker has exited. With two workers, a worker's crash ends only the connections it served;
 * with more, Linux refills its place in the port's group with the last socket, which moves part
 * of the other workers' connections too (docs/scaling.md). Unsubscribing
 * stops every worker: each closes its connections (CLOSE reason 4) and exits; one that has not
 * exited after `stopTimeout` is killed. Options are checked when called (InvalidOptionError).
 */
export function listenCluster(options: ClusterOptions): Observable<Cluster> {
  const workers = options.workers ?? availableParallelism();
  if (!Number.isInteger(workers) || workers < 1 || workers > 1024) throw new InvalidOptionError('workers', workers, 'a whole number from 1 to 1024');
  if (typeof options.worker !== 'string' || options.worker === '') throw new InvalidOptionError('worker', options.worker, 'the path of a module that calls clusterWorker()');
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidOptionError('port', port, 'an integer from 0 to 65535');
  const startTimeout = checkTimeout('startTimeout', options.startTimeout ?? 10_000);
  const stopTimeout = checkTimeout('stopTimeout', options.stopTimeout ?? 5000);
  const host = options.host ?? '0.0.0.0';

  return new Observable<Cluster>((subscriber) => {
    const unavailable = reusePortUnavailable();
    if (unavailable !== undefined) {
      subscriber.error(new ReusePortUnsupportedError(`cannot run ${workers} workers on one port: ${unavailable}`));
      return;
    }
    const members: Member[] = [];
    const exits$ = new Subject<WorkerExit>();
    const pending = new Map<number, (report: WorkerReport) => void>();
    let nextRequest = 1;
    let started = false;
    let stopping = false;
    let everyExit: Promise<void> = Promise.resolve();

    const stop = (): Promise<void> => {
      if (!stopping) {
        stopping = true;
        for (const member of members) {
          if (!member.alive) continue;
          send(member, { type: 'rx-rudp:stop' });
          const timer = setTimeout(() => member.alive && member.child.kill('SIGKILL'), stopTimeout);
          void member.exited.then(() => clearTimeout(timer));
        }
        everyExit = Promise.all(members.map((m) => m.exited)).then(() => undefined);
        exits$.complete();
      }
      return everyExit;
    };

    const fail = (error: Error): void => {
      void stop();
      subscriber.error(error);
    };

    const startWorker = (index: number, bindPort: number): Promise<SocketAddress> => {
      const role: WorkerRole = { index, host, port: bindPort };
      const child = fork(options.worker, [...(options.args ?? [])], {
        ...(options.execArgv === undefined ? {} : { execArgv: [...options.execArgv] }),
        env: { ...(options.env ?? process.env), [WORKER_ROLE_ENV]: JSON.stringify(role) },
        serialization: 'json',
      });
      let markExited!: () => void;
      const member: Member = { index, child, pid: child.pid ?? -1, alive: true, exited: new Promise<void>((resolve) => (markExited = resolve)) };
      members.push(member);
      // A fork that cannot even spawn reports 'error' (and maybe no 'exit').
      child.on('error', () => {
        if (child.pid === undefined) onExit(null, null);
      });
      child.on('message', (message: unknown) => {
        if (!isFromWorker(message)) return;
        const reply: FromWorker = message;
        if (reply.type === 'rx-rudp:stats') {
          pending.get(reply.id)?.(reply.report);
          pending.delete(reply.id);
        }
      });
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (!member.alive) return;
        member.alive = false;
        markExited();
        if (!started || stopping) return;
        exits$.next({ index, pid: member.pid, code, signal });
        if (members.every((m) => !m.alive)) fail(new ClusterError(`every worker has exited (the last, worker ${index}, ${describeExit(code, signal)}): the cluster no longer listens`, index));
      };
      child.on('exit', onExit);

      return new Promise<SocketAddress>((resolve, reject) => {
        const timer = setTimeout(() => done(new ClusterError(`worker ${index} did not listen within ${startTimeout} ms: check that ${options.worker} calls clusterWorker(), or raise startTimeout`, index)), startTimeout);
        const onMessage = (message: unknown): void => {
          if (!isFromWorker(message)) return;
          if (message.type === 'rx-rudp:listening') done(undefined, message.address);
          if (message.type === 'rx-rudp:failed') done(new ClusterError(`worker ${index} could not listen: ${message.message}`, index));
        };
        const onEarlyExit = (code: number | null, signal: NodeJS.Signals | null): void =>
          done(new ClusterError(`worker ${index} (${options.worker}) ${describeExit(code, signal)} before it listened: run it alone to see why`, index));
        const onSpawnError = (error: Error): void => done(new ClusterError(`worker ${index} could not be started: ${error.message}`, index, { cause: error }));
        const done = (error: Error | undefined, address?: SocketAddress): void => {
          clearTimeout(timer);
          child.off('message', onMessage);
          child.off('exit', onEarlyExit);
          child.off('error', onSpawnError);
          if (error === undefined) resolve(address!);
          else reject(error);
        };
        child.on('message', onMessage);
        child.on('exit', onEarlyExit);
        child.on('error', onSpawnError);
      });
    };

    const stats = async (): Promise<ClusterStats> => {
      const live = members.filter((m) => m.alive);
      const reports = await Promise.all(
        live.map(
          (member) =>
            new Promise<WorkerStats | undefined>((resolve) => {
              const id = nextRequest++;
              const timer = setTimeout(() => {
                pending.delete(id);
                resolve(undefined);
              }, STATS_TIMEOUT_MS);
              void member.exited.then(() => {
                if (!pending.delete(id)) return;
                clearTimeout(timer);
                resolve(undefined);
              });
              pending.set(id, (report) => {
                clearTimeout(timer);
                resolve({ index: member.index, pid: member.pid, ...report });
              });
              send(member, { type: 'rx-rudp:stats', id });
            }),
        ),
      );
      return sumStats(reports.filter((r): r is WorkerStats => r !== undefined));
    };

    void (async () => {
      try {
        const address = await startWorker(0, port);
        await Promise.all(Array.from({ length: workers - 1 }, (_, i) => startWorker(i + 1, address.port)));
        if (stopping) return;
        started = true;
        subscriber.next({
          address,
          get workers() {
            return members.filter((m) => m.alive).map((m) => ({ index: m.index, pid: m.pid }));
          },
          exits$: exits$.asObservable(),
          stats,
          close: () => {
            const closed = stop();
            subscriber.complete();
            return closed;
          },
        });
      } catch (error) {
        if (!stopping) fail(error instanceof Error ? error : new Error(String(error)));
      }
    })();

    return () => void stop();
  });
}

/** Adds up the workers' figures. */
export function sumStats(workers: readonly WorkerStats[]): ClusterStats {
  const endpoint = emptyEndpointStats();
  let connections = 0;
  let accepted = 0;
  for (const w of workers) {
    for (const key of Object.keys(endpoint) as (keyof EndpointStats)[]) endpoint[key] += w.endpoint[key] ?? 0;
    connections += w.connections;
    accepted += w.accepted;
  }
  return { endpoint, connections, accepted, workers: [...workers].sort((a, b) => a.index - b.index) };
}

function send(member: Member, message: ToWorker): void {
  if (member.alive && member.child.connected) member.child.send(message, undefined, {}, () => undefined);
}

function checkTimeout(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new InvalidOptionError(name, value, 'a whole number of ms >= 1');
  return value;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal !== null ? `was killed by ${signal}` : `exited with code ${code ?? 'unknown'}`;
}
