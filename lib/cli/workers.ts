/**
 * `--workers N` for the listening commands (echo, receive): this process becomes the cluster's
 * primary and runs the same command line in N worker processes, which share the port. A worker
 * serves exactly as the command does alone; the primary prints 'listening HOST:PORT' once,
 * reports workers that die, and stops them all on SIGINT or SIGTERM.
 */
import { join } from 'node:path';
import type { Subscription } from 'rxjs';
import { listenCluster, type Cluster } from '../cluster/primary';
import { isClusterWorker } from '../cluster/worker';
import { EXIT_FAILURE, EXIT_OK, checkRange, formatAddress, integerFlag, usageLine, warn, withFlagNames, type ParsedCommandLine } from './options';

export { isClusterWorker };

/** The CLI's own entry point: what each worker runs. */
const MAIN = join(__dirname, 'main.js');

export const WORKERS_USAGE = usageLine('--workers N', 'serve with N processes on one port, e.g. one per core (Linux, Node 22.12+; default: this process alone)');

/** The --workers value, if given (1 to 1024). */
export function workersFlag(values: ParsedCommandLine['values'], command: string): number | undefined {
  const workers = integerFlag(values, 'workers', command);
  return workers === undefined ? undefined : checkRange(workers, 1, 1024, '--workers', command);
}

/**
 * Runs `command argv` in `workers` processes sharing host:port; resolves with the exit code: 0
 * after SIGINT/SIGTERM stopped them, 1 when they could not start (Node without reusePort, port
 * in use, …) or all of them died.
 */
export function runClusterPrimary(command: string, argv: readonly string[], where: { host: string; port: number; workers: number }): Promise<number> {
  const cluster$ = withFlagNames(command, { host: '--host', port: '--port', workers: '--workers' }, () =>
    listenCluster({ worker: MAIN, args: [command, ...argv], workers: where.workers, host: where.host, port: where.port }),
  );
  return new Promise<number>((resolve) => {
    let cluster: Cluster | undefined;
    let subscription: Subscription | undefined;
    let settled = false;
    const finish = (code: number): void => {
      if (settled) return;
      settled = true;
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      // The workers close their connections (CLOSE reason 4) and exit; resolve once they have.
      const closed = cluster?.close() ?? Promise.resolve();
      subscription?.unsubscribe();
      void closed.then(() => resolve(code));
    };
    const stop = (): void => finish(EXIT_OK);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    subscription = cluster$.subscribe({
      next: (started) => {
        cluster = started;
        process.stdout.write(`listening ${formatAddress(started.address.address, started.address.port)}\n`);
        started.exits$.subscribe((exit) => {
          const how = exit.signal !== null ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
          warn(`worker ${exit.index} (pid ${exit.pid}) ${how}: its connections are lost; ${started.workers.length} of ${where.workers} workers still serve`);
        });
      },
      error: (error: unknown) => {
        warn(error instanceof Error ? error.message : String(error));
        finish(EXIT_FAILURE);
      },
    });
  });
}

/**
 * In a worker, SIGINT (Ctrl-C reaches the whole process group) and SIGTERM are the primary's to
 * act on: it stops every worker. Once the primary is gone, they `stop` this one as usual.
 */
export function leaveSignalsToPrimary(stop: () => void): () => void {
  const onSignal = (): void => {
    if (!process.connected) stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}
