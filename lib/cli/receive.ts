/**
 * `rx-rudp receive [--port P] [--out DIR] [--once]`: receives files sent by `rx-rudp send`. The
 * transfer protocol is described in full in transfer-protocol.ts; in short, per file: a JSON
 * header {name, size}, exactly `size` bytes of data messages, a JSON trailer with the SHA-256;
 * the receiver answers "ok" or "error", and reports written bytes every few MiB so that the
 * sender never runs further ahead of the disk than its write window.
 *
 * Each file is written to DIR/NAME.part as it arrives (hashed on the way), flushed to disk, its
 * SHA-256 compared with the trailer's, and only then renamed to DIR/NAME: a NAME is always
 * complete and verified. A file that fails — refused name, SHA-256 mismatch, write error, or the
 * connection ending in the middle — has its NAME.part deleted; the sender gets the reason.
 * Connections are independent: several senders may send at once (not the same NAME).
 */
import { createHash, type Hash } from 'node:crypto';
import { accessSync, constants, createWriteStream, rmSync, statSync, type WriteStream } from 'node:fs';
import { rename } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { mergeMap, Observable, Subscription, take } from 'rxjs';
import { listen, type Channel, type Connection, type ConnectionStats } from '../index';
import { clusterWorker } from '../cluster/worker';
import {
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
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
import { Progress, formatAmount, formatBytes, peakRss, statsLines } from './progress';
import { WRITTEN_STEP, controlChannel, decodeHeader, decodeTrailer, encodeControl, type FileHeader, type FileTrailer } from './transfer-protocol';

const COMMAND = 'receive';

export const RECEIVE_USAGE = `Usage: rx-rudp receive [--port PORT] [--host HOST] [--out DIR] [--once] [options]

Listens for 'rx-rudp send' and receives its files into DIR. Prints 'listening HOST:PORT' on
stdout once bound (the real port when PORT is 0). Each file is written as NAME.part, its SHA-256
checked against the sender's, and only then renamed to NAME (replacing a file of that name). A
file that fails is deleted and the sender told why, as is a file whose name has a path
separator or is '.' or '..'.

Progress on stderr: a bar with rate and ETA on a terminal, otherwise a line every 10 %. Each
verified file, and at the end of each connection a summary with its statistics and this
process's peak memory, on stdout.

Options:
${usageLine('--host HOST', "local address to bind (default 0.0.0.0; '::' for IPv6)")}
${usageLine('--port PORT', 'local port, 0 for any free one (default 0)')}
${usageLine('--out DIR', 'directory to write the files into (default: the current directory)')}
${usageLine('--once', 'serve one connection (refusing others meanwhile), then exit')}
${KEY_USAGE}
${WORKERS_USAGE}
${protocolUsage()}
${usageLine('-h, --help', 'show this help')}

With --once: exits 0 when every file of that connection arrived verified, 1 when one failed or
the connection failed before any file arrived. Without: runs until SIGINT or SIGTERM, logs each
failed file on stderr as one line, and exits 0 (1 if a file was still arriving: its NAME.part is
deleted). Both: 1 when the socket cannot be bound, 2 on a usage error or an unwritable DIR.

With --workers N (not with --once), N processes share the port, each receiving whole
connections; SIGINT or SIGTERM stops them all (a file still arriving is deleted) and exits 0;
1 when this Node cannot share a port or every worker died.
`;

/** Runs the command; resolves with the exit code. Throws UsageError for a bad command line. */
export async function runReceive(argv: readonly string[]): Promise<number> {
  const args = parseCommandLine(
    COMMAND,
    argv,
    { ...protocolParseOptions(), host: { type: 'string' }, port: { type: 'string' }, out: { type: 'string' }, once: { type: 'boolean' }, workers: { type: 'string' }, key: { type: 'string' } },
    false,
  );
  if (args.help) {
    process.stdout.write(RECEIVE_USAGE);
    return EXIT_OK;
  }
  const host = stringFlag(args.values, 'host') ?? '0.0.0.0';
  if (host === '') throw new UsageError(invalidValue('--host', host, 'a local address'), COMMAND);
  // Checked here as well as by the library, so that a port is worded the same in every command.
  const port = checkRange(integerFlag(args.values, 'port', COMMAND) ?? 0, 0, 65535, '--port', COMMAND);
  const once = args.values['once'] === true;
  const out = resolve(stringFlag(args.values, 'out') ?? '.');
  const problem = checkDirectory(out);
  if (problem !== undefined) throw new UsageError(problem, COMMAND);
  const secure = listenerKey(args.values, COMMAND);
  // channels: the reports go on a channel of their own when the sender offers it too (transfer-protocol.ts).
  const options = { ...protocolOptions(args.values, COMMAND), ...(secure === undefined ? {} : { secure }), channels: true };
  const workers = workersFlag(args.values, COMMAND);
  if (workers !== undefined && once) throw new UsageError('--once serves one connection in one process: it cannot be combined with --workers', COMMAND);
  // One of the workers of `--workers N`: serve on the shared port; the primary prints and stops.
  const worker = workers !== undefined && isClusterWorker();
  const connections$ = withFlagNames(COMMAND, { host: '--host', port: '--port', 'secure.privateKey': '--key' }, () =>
    worker
      ? clusterWorker(options)
      : listen({
          ...options,
          host,
          port,
          // --once: a second sender is refused (CLOSE reason 5) instead of waiting unserved.
          ...(once ? { maxConnections: 1 } : {}),
          onListening: (address) => process.stdout.write(`listening ${formatAddress(address.address, address.port)}\n`),
        }),
  );
  if (workers !== undefined && !worker) return runClusterPrimary(COMMAND, argv, { host, port, workers });

  const context: ReceiveContext = { out, active: new Set(), sessions: new Set() };
  return new Promise<number>((resolveExit) => {
    let subscription: Subscription | undefined;
    let settled = false;
    const finish = (code: number): void => {
      if (settled) return;
      settled = true;
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      restoreSignals();
      // Partial files are deleted first, quietly; then every connection is closed (CLOSE reason 4), and the socket.
      for (const session of context.sessions) session.abandon();
      subscription?.unsubscribe();
      resolveExit(code);
    };
    const stop = (): void => {
      let code = EXIT_OK;
      for (const session of context.sessions) {
        const incomplete = session.incomplete();
        if (incomplete !== undefined) {
          warn(`interrupted while receiving ${incomplete}: partial file deleted`);
          code = EXIT_FAILURE;
        }
      }
      finish(code);
    };
    // A worker stops when the primary says so: its listener then completes.
    const restoreSignals = worker ? leaveSignalsToPrimary(stop) : () => undefined;
    if (!worker) {
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    }
    const results$ = connections$.pipe(mergeMap((connection) => receiveFiles(connection, context)));
    subscription = (once ? results$.pipe(take(1)) : results$).subscribe({
      next: (result) => {
        if (once) finish(result.failure === undefined ? EXIT_OK : EXIT_FAILURE);
      },
      error: (error: unknown) => {
        warn(error instanceof Error ? error.message : String(error));
        finish(EXIT_FAILURE);
      },
      complete: () => {
        if (worker) return stop();
        if (!once) warn('the socket closed');
        finish(EXIT_FAILURE);
      },
    });
  });
}

/** Why files cannot be written into `dir` (undefined when they can). */
function checkDirectory(dir: string): string | undefined {
  try {
    if (!statSync(dir).isDirectory()) return `invalid value for --out: '${dir}' is not a directory`;
    accessSync(dir, constants.W_OK);
    return undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `invalid value for --out: '${dir}' does not exist`;
    return `invalid value for --out: cannot write into '${dir}' (${code ?? (error as Error).message})`;
  }
}

interface ReceiveContext {
  readonly out: string;
  /** Names being received on some connection (two senders may not write the same NAME.part). */
  readonly active: Set<string>;
  readonly sessions: Set<ReceiveSession>;
}

export interface ReceiveResult {
  readonly files: readonly ReceivedFile[];
  /** Why the connection's transfer failed; undefined when it succeeded. */
  readonly failure: string | undefined;
  readonly stats: ConnectionStats;
}

interface ReceivedFile {
  readonly name: string;
  readonly size: number;
  readonly sha256: string;
}

/** Receives the files of one connection; emits once when it has ended (cleanly or not), then completes. */
function receiveFiles(connection: Connection, context: ReceiveContext): Observable<ReceiveResult> {
  return new Observable<ReceiveResult>((subscriber) => {
    const session = new ReceiveSession(connection, context, (result) => {
      subscriber.next(result);
      subscriber.complete();
    });
    context.sessions.add(session);
    return () => {
      context.sessions.delete(session);
      session.abandon();
    };
  });
}

interface Incoming {
  readonly name: string;
  readonly size: number;
  readonly part: string;
  readonly target: string;
  readonly stream: WriteStream;
  readonly hash: Hash;
  readonly progress: Progress;
  readonly started: number;
  received: number;
}

type State = 'header' | 'data' | 'trailer' | 'finishing' | 'failed' | 'done';

/** One connection's receiving side: a state machine over its messages (see transfer-protocol.ts). */
class ReceiveSession {
  private state: State = 'header';
  private current: Incoming | undefined;
  /** Messages that arrived while a file was being flushed and renamed. */
  private pending: Uint8Array[] = [];
  private written = 0;
  private reported = 0;
  private readonly files: ReceivedFile[] = [];
  private failure: string | undefined;
  private ended = false;
  private endError: Error | undefined;
  private readonly peer: string;
  private readonly started = performance.now();
  private readonly subscription: Subscription;
  /** Where this side's messages go: CONTROL_CHANNEL, or channel 0 with a sender from before channels. */
  private readonly control: Channel;

  constructor(
    private readonly connection: Connection,
    private readonly context: ReceiveContext,
    private readonly onDone: (result: ReceiveResult) => void,
  ) {
    this.peer = formatAddress(connection.remote.address, connection.remote.port);
    this.control = controlChannel(connection);
    // Hot: subscribed synchronously, as the connection is emitted.
    this.subscription = connection.messages$.subscribe({
      next: (message) => this.onMessage(message),
      error: (error: unknown) => this.onEnd(error instanceof Error ? error : new Error(String(error))),
      complete: () => this.onEnd(undefined),
    });
  }

  /** "NAME (X of Y bytes)" while a file is arriving. */
  incomplete(): string | undefined {
    const c = this.current;
    return c === undefined || this.state === 'failed' || this.state === 'done' ? undefined : `${c.name} (${c.received} of ${c.size} bytes)`;
  }

  /** The command is stopping: drop the connection's partial file, quietly. */
  abandon(): void {
    this.subscription.unsubscribe();
    if (this.state !== 'failed' && this.state !== 'done') this.discard();
    this.state = 'done';
  }

  private onMessage(message: Uint8Array): void {
    switch (this.state) {
      case 'header': {
        const header = decodeHeader(message);
        return typeof header === 'string' ? this.fail(header) : this.begin(header);
      }
      case 'data':
        return this.onData(message);
      case 'trailer': {
        const trailer = decodeTrailer(message);
        if (typeof trailer === 'string') return this.fail(trailer);
        this.complete(trailer).catch((error: unknown) => this.fail(`cannot finish the file: ${error instanceof Error ? error.message : String(error)}`));
        return;
      }
      case 'finishing':
        this.pending.push(message);
        return;
      case 'failed':
      case 'done':
        return; // the sender is told; the rest is ignored until the connection closes
    }
  }

  private begin(header: FileHeader): void {
    const { name, size } = header;
    if (this.context.active.has(name)) return this.fail(`${name} is being received on another connection`, name);
    const part = join(this.context.out, `${name}.part`);
    const stream = createWriteStream(part, { flush: true });
    stream.on('error', (error) => this.fail(`cannot write ${part}: ${error.message}`));
    this.context.active.add(name);
    this.current = { name, size, part, target: join(this.context.out, name), stream, hash: createHash('sha256'), progress: new Progress(name, size), started: performance.now(), received: 0 };
    this.state = size === 0 ? 'trailer' : 'data';
  }

  private onData(data: Uint8Array): void {
    const c = this.current!;
    c.received += data.length;
    if (c.received > c.size) return this.fail(`more data than the ${c.size} bytes announced`);
    c.hash.update(data);
    const length = data.length;
    c.stream.write(data, (error) => {
      if (error === undefined || error === null) this.onWritten(length);
    });
    c.progress.update(c.received);
    if (c.received === c.size) this.state = 'trailer';
  }

  /** Tells the sender how much is on disk, every WRITTEN_STEP bytes (its write window moves on). */
  private onWritten(bytes: number): void {
    this.written += bytes;
    if (this.written - this.reported < WRITTEN_STEP) return;
    this.reported = this.written;
    this.control.send$.next(encodeControl({ type: 'written', bytes: this.written }));
  }

  /** The whole file arrived: flush it to disk, check the SHA-256, rename it into place, confirm. */
  private async complete(trailer: FileTrailer): Promise<void> {
    const c = this.current!;
    this.state = 'finishing';
    await new Promise<void>((resolveClosed) => {
      c.stream.once('close', resolveClosed);
      c.stream.end();
    });
    if (this.state !== 'finishing') return; // failed while flushing (reported), or abandoned
    const sha256 = c.hash.digest('hex');
    if (sha256 !== trailer.sha256) return this.fail(`SHA-256 mismatch: received ${sha256}, the sender's is ${trailer.sha256}`);
    try {
      await rename(c.part, c.target);
    } catch (error) {
      return this.fail(`cannot rename ${c.part} to ${c.target}: ${(error as Error).message}`);
    }
    if (this.state !== 'finishing') return;
    c.progress.update(c.size);
    c.progress.finish();
    this.context.active.delete(c.name);
    this.current = undefined;
    this.files.push({ name: c.name, size: c.size, sha256 });
    this.control.send$.next(encodeControl({ type: 'ok', name: c.name, size: c.size, sha256, written: this.written }));
    process.stdout.write(`received ${c.name}: ${formatAmount(c.size, performance.now() - c.started)} → ${c.target}, SHA-256 ${sha256} verified\n`);
    this.state = 'header';
    this.drainPending();
  }

  /** Hands over what arrived while a file was finishing, until another file starts finishing. */
  private drainPending(): void {
    const current = (): State => this.state;
    while (this.pending.length > 0 && current() !== 'finishing' && current() !== 'failed') this.onMessage(this.pending.shift()!);
    if (this.ended && current() !== 'finishing') this.onEnd(this.endError);
  }

  /** The file (or the transfer) failed: delete the partial file, tell the sender, close once it knows. */
  private fail(reason: string, name = this.current?.name): void {
    if (this.state === 'failed' || this.state === 'done') return;
    this.discard();
    this.state = 'failed';
    this.pending = [];
    this.failure = `${name ?? 'transfer'}: ${reason}`;
    warn(`from ${this.peer}: ${this.failure}${this.current === undefined ? '' : ' (partial file deleted)'}`);
    this.current = undefined;
    if (this.ended) return this.done();
    this.control.send(encodeControl({ type: 'error', name: name ?? '', reason })).subscribe({
      complete: () => this.connection.close(),
      error: () => undefined, // the connection ended first: onEnd reports
    });
  }

  /** Deletes the current file's partial copy (the final name is never touched). */
  private discard(): void {
    const c = this.current;
    if (c === undefined) return;
    c.progress.finish();
    // The file may still be opening: delete it now, and again once the stream has closed.
    const remove = (): void => rmSync(c.part, { force: true });
    remove();
    if (!c.stream.closed) {
      c.stream.once('close', remove);
      c.stream.destroy();
    }
    this.context.active.delete(c.name);
  }

  private onEnd(error: Error | undefined): void {
    this.ended = true;
    this.endError = error;
    const how = error === undefined ? 'the connection closed' : `the connection failed: ${error.message}`;
    const c = this.current;
    if (this.state === 'data' || this.state === 'trailer') return this.fail(`incomplete: ${how} after ${c!.received} of ${c!.size} bytes`);
    if (this.state === 'finishing') return; // complete() finishes, then reports
    if (this.state === 'header' && error !== undefined) {
      if (this.files.length === 0) this.failure = how;
      warn(`from ${this.peer}: ${how}`);
    }
    this.done();
  }

  private done(): void {
    if (this.state === 'done') return;
    this.state = 'done';
    this.subscription.unsubscribe();
    const bytes = this.files.reduce((sum, f) => sum + f.size, 0);
    const count = `${this.files.length} file${this.files.length === 1 ? '' : 's'}`;
    const verdict = this.failure === undefined ? 'every one verified by SHA-256' : `failed: ${this.failure}`;
    process.stdout.write(
      [
        `received ${count} from ${this.peer}: ${formatAmount(bytes, performance.now() - this.started)}, ${verdict}`,
        ...statsLines(this.connection.stats),
        `peak memory: ${formatBytes(peakRss())} resident (this process)`,
      ].join('\n') + '\n',
    );
    // Reported once the connection's close has run its course (this may be called from within it),
    // so that what the command does next (e.g. unsubscribing the listener) does not re-enter it.
    const result: ReceiveResult = { files: this.files, failure: this.failure, stats: this.connection.stats };
    queueMicrotask(() => this.onDone(result));
  }
}
