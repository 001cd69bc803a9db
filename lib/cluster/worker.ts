import { Observable, Subject, takeUntil, tap } from 'rxjs';
import type { Connection } from '../core/connection';
import { emptyEndpointStats, type EndpointStats } from '../core/endpoint';
import { listen, type ListenOptions } from '../api/listen';
import { ClusterError } from './errors';
import { WORKER_ROLE_ENV, isToWorker, type FromWorker, type ToWorker, type WorkerRole } from './messages';

/** What a worker may choose itself; the primary decides where it binds. */
export type ClusterWorkerOptions = Omit<ListenOptions, 'host' | 'port' | 'reusePort' | 'socketFactory'>;

/** True in a process that listenCluster() started as one of its workers. */
export function isClusterWorker(): boolean {
  return process.env[WORKER_ROLE_ENV] !== undefined && typeof process.send === 'function';
}

/** This worker's index (0 .. workers - 1), or undefined outside a cluster worker. */
export function clusterWorkerIndex(): number | undefined {
  return isClusterWorker() ? workerRole().index : undefined;
}

/**
 * The connections of this worker of a cluster: `listen()` on the port the primary chose, shared
 * with the other workers (`reusePort`). Call it once, in the module listenCluster() runs as
 * `worker`; handle the connections here (they cannot cross processes). Completes when the primary
 * stops the cluster (or goes away): every connection is then closed with CLOSE reason 4, as when
 * a listen() is unsubscribed. Unsubscribing stops this worker in the same way. `maxConnections`
 * counts this worker's connections only. Throws ClusterError outside a cluster worker.
 */
export function clusterWorker(options: ClusterWorkerOptions = {}): Observable<Connection> {
  if (!isClusterWorker()) {
    throw new ClusterError(`clusterWorker() serves in a worker process started by listenCluster() (${WORKER_ROLE_ENV} and an IPC channel are missing): start this module with listenCluster({ worker })`);
  }
  const role = workerRole();
  return new Observable<Connection>((subscriber) => {
    let endpoint: EndpointStats = emptyEndpointStats();
    let connections = 0;
    let accepted = 0;
    const stop$ = new Subject<void>();
    const tell = (message: FromWorker): void => {
      if (process.connected) process.send!(message, undefined, {}, () => undefined);
    };
    const onMessage = (message: unknown): void => {
      if (!isToWorker(message)) return;
      const request: ToWorker = message;
      if (request.type === 'rx-rudp:stop') return stop$.next();
      const cpu = process.cpuUsage();
      tell({
        type: 'rx-rudp:stats',
        id: request.id,
        report: { endpoint: { ...endpoint }, connections, accepted, cpuUser: cpu.user, cpuSystem: cpu.system, rssBytes: process.memoryUsage().rss },
      });
    };
    // The primary is gone (exited, crashed): stop too, rather than serve a port nobody supervises.
    const onDisconnect = (): void => stop$.next();
    process.on('message', onMessage);
    process.on('disconnect', onDisconnect);

    const subscription = listen({
      ...options,
      host: role.host,
      port: role.port,
      reusePort: true,
      onListening: (address, stats) => {
        endpoint = stats;
        tell({ type: 'rx-rudp:listening', address });
        options.onListening?.(address, stats);
      },
    })
      .pipe(
        tap((connection) => {
          accepted++;
          connections++;
          connection.closed$.subscribe(() => connections--);
        }),
        takeUntil(stop$),
      )
      .subscribe({
        next: (connection) => subscriber.next(connection),
        error: (error: unknown) => {
          const failure = error instanceof Error ? error : new Error(String(error));
          tell({ type: 'rx-rudp:failed', name: failure.name, message: failure.message });
          subscriber.error(error);
        },
        complete: () => subscriber.complete(),
      });

    return () => {
      subscription.unsubscribe();
      process.off('message', onMessage);
      process.off('disconnect', onDisconnect);
      // Without the channel nothing of ours holds the process: it exits once its sockets have
      // sent their last CLOSE and closed.
      if (process.connected) process.disconnect();
    };
  });
}

function workerRole(): WorkerRole {
  const raw = process.env[WORKER_ROLE_ENV] ?? '';
  try {
    const role = JSON.parse(raw) as WorkerRole;
    if (Number.isInteger(role.index) && typeof role.host === 'string' && Number.isInteger(role.port)) return role;
  } catch {
    // Reported below.
  }
  throw new ClusterError(`${WORKER_ROLE_ENV} is not a worker role set by listenCluster(): '${raw}'`);
}
