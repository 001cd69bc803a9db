/**
 * The worker module of bench/workers.ts: one cluster worker that echoes small messages (the
 * many-connections case) and only consumes large ones (the bulk case, where the sender's
 * acknowledged sends are the measure).
 */
import { clusterWorker } from '../lib/cluster/index';

const ECHO_LIMIT = 1024;

clusterWorker({ maxConnections: 100_000 }).subscribe({
  next: (connection) => {
    connection.messages$.subscribe({
      next: (message) => {
        if (message.length <= ECHO_LIMIT) connection.send$.next(message);
      },
      error: () => undefined,
    });
  },
  error: (error: Error) => {
    process.stderr.write(`workers-worker: ${error.message}\n`);
    process.exitCode = 1;
  },
});
