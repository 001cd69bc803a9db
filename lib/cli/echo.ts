/**
 * `rx-rudp echo`: a listener that sends every message and DIRECT datagram back to its sender.
 */
import { mergeMap, Observable, Subscription } from 'rxjs';
import { listen, type Connection } from '../index';
import { clusterWorker } from '../cluster/worker';
import {
  EXIT_FAILURE,
  EXIT_OK,
  UsageError,
  checkRange,
  invalidValue,
  formatAddress,
  integerFlag,
  parseCommandLine,
  protocolOptions,
  protocolParseOptions,
  protocolUsage,
  stringFlag,
  usageLine,
  warn,
  withFlagNames,
} from './options';
import { KEY_USAGE, listenerKey } from './keys';
import { WORKERS_USAGE, isClusterWorker, leaveSignalsToPrimary, runClusterPrimary, workersFlag } from './workers';

const COMMAND = 'echo';

export const ECHO_USAGE = `Usage: rx-rudp echo [--host HOST] [--port PORT] [options]

Listens for connections and echoes every message back as a message, and every DIRECT
datagram back as a DIRECT datagram. Prints 'listening HOST:PORT' on stdout once bound (the
real port when PORT is 0; an IPv6 HOST in brackets). Runs until SIGINT or SIGTERM, then closes
every connection (CLOSE reason 4, shutting down) and the socket, and exits 0. A connection's
abnormal end is logged on stderr as one line; the server keeps running.

Options:
${usageLine('--host HOST', "local address to bind (default 0.0.0.0; '::' for IPv6)")}
${usageLine('--port PORT', 'local port, 0 for any free one (default 0)')}
${usageLine('--max-connections N', 'open connections beyond which new ones are refused (default 1024; per worker)')}
${KEY_USAGE}
${WORKERS_USAGE}
${protocolUsage()}
${usageLine('-h, --help', 'show this help')}

With --workers N, N processes share the port (the kernel keeps each peer on one of them); a
worker that dies is reported on stderr and takes its connections with it.

Exit codes: 0 stopped by SIGINT/SIGTERM, 1 cannot bind or the socket failed (or, with --workers,
this Node cannot share a port, or every worker died), 2 usage error.
`;

/** Runs the command; resolves with the exit code. Throws UsageError for a bad command line. */
export async function runEcho(argv: readonly string[]): Promise<number> {
  const args = parseCommandLine(
    COMMAND,
    argv,
    { ...protocolParseOptions(), host: { type: 'string' }, port: { type: 'string' }, 'max-connections': { type: 'string' }, workers: { type: 'string' }, key: { type: 'string' } },
    false,
  );
  if (args.help) {
    process.stdout.write(ECHO_USAGE);
    return EXIT_OK;
  }
  const host = stringFlag(args.values, 'host') ?? '0.0.0.0';
  if (host === '') throw new UsageError(invalidValue('--host', host, 'a local address'), COMMAND);
  // Checked here as well as by the library, so that a port is worded the same in every command.
  const port = checkRange(integerFlag(args.values, 'port', COMMAND) ?? 0, 0, 65535, '--port', COMMAND);
  const maxConnections = integerFlag(args.values, 'max-connections', COMMAND);
  const secure = listenerKey(args.values, COMMAND);
  const options = { ...protocolOptions(args.values, COMMAND), ...(secure === undefined ? {} : { secure }) };
  const workers = workersFlag(args.values, COMMAND);
  // One of the workers of `--workers N`: serve on the shared port; the primary prints and stops.
  const worker = workers !== undefined && isClusterWorker();

  let stopping = false;
  const connections$ = withFlagNames(COMMAND, { host: '--host', port: '--port', maxConnections: '--max-connections', 'secure.privateKey': '--key' }, () =>
    worker
      ? clusterWorker({ ...options, ...(maxConnections === undefined ? {} : { maxConnections }) })
      : listen({
          ...options,
          host,
          port,
          ...(maxConnections === undefined ? {} : { maxConnections }),
          onListening: (address) => process.stdout.write(`listening ${formatAddress(address.address, address.port)}\n`),
        }),
  );
  if (workers !== undefined && !worker) return runClusterPrimary(COMMAND, argv, { host, port, workers });

  return new Promise<number>((resolve) => {
    let subscription: Subscription | undefined;
    const finish = (code: number): void => {
      stopping = true;
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      restoreSignals();
      // Closes every connection (CLOSE reason 4) and the socket.
      subscription?.unsubscribe();
      resolve(code);
    };
    const stop = (): void => finish(EXIT_OK);
    // A worker stops when the primary says so: its listener then completes.
    const restoreSignals = worker ? leaveSignalsToPrimary(stop) : () => undefined;
    if (!worker) {
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    }
    subscription = connections$
      .pipe(mergeMap((connection) => serve(connection, () => stopping)))
      .subscribe({
        error: (error: unknown) => {
          warn(error instanceof Error ? error.message : String(error));
          finish(EXIT_FAILURE);
        },
        complete: () => {
          stopping = true;
          if (worker) return finish(EXIT_OK);
          warn('the socket closed');
          finish(EXIT_FAILURE);
        },
      });
  });
}

/**
 * Echoes on one connection until it closes; never errors, so one connection's end cannot stop
 * the server. An abnormal end is logged, unless the server itself is stopping.
 */
function serve(connection: Connection, stopping: () => boolean): Observable<never> {
  return new Observable<never>((subscriber) => {
    const subscriptions = new Subscription();
    const peer = formatAddress(connection.remote.address, connection.remote.port);
    subscriptions.add(
      connection.closed$.subscribe((info) => {
        if (info.error !== undefined && !stopping()) warn(`connection ${connection.id} from ${peer} ended: ${info.error.message}`);
        subscriber.complete();
      }),
    );
    subscriptions.add(
      connection.messages$.subscribe({
        next: (message) => connection.send$.next(message),
        error: () => undefined, // reported through closed$
      }),
    );
    subscriptions.add(
      connection.direct$.subscribe((payload) => {
        try {
          connection.sendDirect(payload);
        } catch {
          // Larger than our DIRECT limit (a peer breaking its own): not echoed.
        }
      }),
    );
    return subscriptions;
  });
}
