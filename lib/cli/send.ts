/**
 * `rx-rudp send HOST PORT FILE...`: sends files to `rx-rudp receive`, one after another on one
 * connection. The transfer protocol is described in full in transfer-protocol.ts; in short, per
 * file: a JSON header {name, size}, the bytes as 1 MiB messages, a JSON trailer with the SHA-256;
 * the receiver answers "ok" (verified and renamed into place) or "error", and reports the bytes
 * it has written as it goes.
 *
 * Memory stays bounded whatever the file size: the file is read with a pull-based stream
 * (`for await` over createReadStream), and each chunk is only read once the previous one fits in
 * the send buffer (bufferedBytes + size <= maxBufferedBytes, watched on `bufferedBytes$`) and in
 * the receiver's write window (data sent but not yet reported written). After the last file is
 * confirmed, completing `send$` delivers what is left and closes normally.
 */
import { SERVER_KEY_USAGE, serverKey } from './keys';
import { createHash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { basename } from 'node:path';
import { Subscription } from 'rxjs';
import { connect, DEFAULTS, type CloseInfo, type Connection } from '../index';
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
  parseInteger,
  protocolOptions,
  protocolParseOptions,
  protocolUsage,
  splitHostPort,
  usageLine,
  warn,
  withFlagNames,
} from './options';
import { Progress, formatAmount, statsLines } from './progress';
import {
  DEFAULT_CHUNK_SIZE,
  TRANSFER_VERSION,
  controlChannel,
  decodeReceiverMessage,
  encodeControl,
  writeWindow,
  type ReceiverMessage,
} from './transfer-protocol';

const COMMAND = 'send';
export const EXIT_INTERRUPTED = 130;

export const SEND_USAGE = `Usage: rx-rudp send HOST PORT FILE... [options]

Sends each FILE to 'rx-rudp receive' listening at HOST:PORT, one after another on one
connection: its name (without directories) and size, then its bytes as a stream of messages,
then its SHA-256. The receiver writes NAME.part, verifies the SHA-256, renames it to NAME and
confirms before the next file goes. Files of any size: reading is throttled by the send buffer
and by what the receiver has written, so a file never sits in memory.

Progress on stderr: a bar with rate and ETA on a terminal, otherwise a line every 10 %. Each
confirmed file, and a summary with the connection's statistics, on stdout.

Options:
${usageLine('--chunk-size BYTES', `size of the data messages, at most the receiver's --max-message-size (default ${DEFAULT_CHUNK_SIZE})`)}
${SERVER_KEY_USAGE}
${usageLine('--max-buffered-bytes BYTES', `send buffer: bytes queued or unacknowledged at most (default ${DEFAULTS.maxBufferedBytes})`)}
${protocolUsage()}
${usageLine('-h, --help', 'show this help')}

Exit codes: 0 every file confirmed by the receiver; 1 connection failure (connect timeout,
refusal, peer timeout, abnormal close), a file the receiver refused or could not verify, or a
read error; 2 usage error, or a FILE that is not a readable regular file; 130 SIGINT/SIGTERM.
`;

interface FileToSend {
  readonly path: string;
  readonly name: string;
  readonly size: number;
}

/** Runs the command; resolves with the exit code. Throws UsageError for a bad command line. */
export async function runSend(argv: readonly string[]): Promise<number> {
  const args = parseCommandLine(
    COMMAND,
    argv,
    { ...protocolParseOptions(), 'chunk-size': { type: 'string' }, 'max-buffered-bytes': { type: 'string' }, 'server-key': { type: 'string' } },
    true,
  );
  if (args.help) {
    process.stdout.write(SEND_USAGE);
    return EXIT_OK;
  }
  const [host, portText, ...paths] = args.positionals;
  if (host === undefined) throw new UsageError('missing HOST, PORT and FILE', COMMAND);
  // `send localhost:7000 FILE`: HOST and PORT are two arguments.
  const joined = splitHostPort(host);
  if (joined !== undefined && (portText === undefined || !/^\d+$/.test(portText))) {
    throw new UsageError(`missing PORT (did you mean 'rx-rudp send ${joined.host} ${joined.port} ${portText === undefined ? 'FILE...' : [portText, ...paths].join(' ')}'?)`, COMMAND);
  }
  if (portText === undefined) throw new UsageError('missing PORT and FILE', COMMAND);
  if (paths.length === 0) throw new UsageError('missing FILE: name at least one file to send', COMMAND);
  const port = checkRange(parseInteger(portText, 'PORT', COMMAND), 1, 65535, 'PORT', COMMAND);
  const chunkSize = integerFlag(args.values, 'chunk-size', COMMAND) ?? DEFAULT_CHUNK_SIZE;
  const maxBufferedBytes = integerFlag(args.values, 'max-buffered-bytes', COMMAND);
  checkRange(chunkSize, 1, DEFAULTS.maxMessageSize, '--chunk-size', COMMAND);
  if (maxBufferedBytes !== undefined && maxBufferedBytes >= 1 && chunkSize > maxBufferedBytes) {
    throw new UsageError(invalidValue('--chunk-size', chunkSize, `at most --max-buffered-bytes, ${maxBufferedBytes}`), COMMAND);
  }
  const secure = serverKey(args.values, COMMAND);
  // channels: the receiver's reports then come on a channel of their own (transfer-protocol.ts).
  const options = { ...protocolOptions(args.values, COMMAND), ...(maxBufferedBytes === undefined ? {} : { maxBufferedBytes }), ...(secure === undefined ? {} : { secure }), channels: true };

  const files: FileToSend[] = [];
  for (const path of paths) {
    const file = inspect(path);
    if (typeof file === 'string') throw new UsageError(file, COMMAND);
    const twin = files.find((f) => f.name === file.name);
    if (twin !== undefined) throw new UsageError(`'${twin.path}' and '${path}' have the same name '${file.name}' at the receiver`, COMMAND);
    files.push(file);
  }

  const connection$ = withFlagNames(COMMAND, { host: 'HOST', port: 'PORT', maxBufferedBytes: '--max-buffered-bytes', 'secure.serverPublicKey': '--server-key' }, () =>
    connect({ ...options, host, port }),
  );

  let interrupt!: () => void;
  const interrupted = new Promise<never>((_, reject) => {
    interrupt = () => reject(new Interrupted());
  });
  interrupted.catch(() => undefined); // raced below; never unhandled
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);

  let session: SendSession | undefined;
  let settleEnded!: () => void;
  const ended = new Promise<void>((resolve) => (settleEnded = resolve));
  let subscription: Subscription | undefined;
  const opened = new Promise<SendSession>((resolve, reject) => {
    // Keep the subscription while the connection lives: unsubscribing closes it.
    subscription = connection$.subscribe({
      // messages$ is hot: the session subscribes to it here, synchronously.
      next: (conn) => resolve((session = new SendSession(conn, files, chunkSize))),
      error: (error: unknown) => {
        reject(error);
        settleEnded();
      },
      complete: () => settleEnded(),
    });
  });
  opened.catch(() => undefined);

  let code: number;
  try {
    const s = await Promise.race([opened, interrupted]);
    const running = s.run();
    running.catch(() => undefined); // raced: an interruption leaves it to fail on its own
    await Promise.race([running, interrupted]);
    // Every file confirmed: deliver what is left (acks of the last trailer), then close normally.
    s.conn.send$.complete();
    await Promise.race([ended, interrupted]);
    if (s.closeInfo?.error !== undefined) throw s.closeInfo.error;
    code = EXIT_OK;
  } catch (error) {
    if (error instanceof Interrupted) {
      warn(`interrupted${session === undefined ? '' : `: ${session.sent.length} of ${files.length} files sent`}`);
      code = EXIT_INTERRUPTED;
    } else {
      warn(error instanceof Error ? error.message : String(error));
      code = EXIT_FAILURE;
    }
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
    session?.stop();
    subscription?.unsubscribe();
  }
  if (session !== undefined) process.stdout.write(session.summary(formatAddress(host, port)));
  return code;
}

class Interrupted extends Error {}

/** The file at `path`, or why it cannot be sent. */
function inspect(path: string): FileToSend | string {
  try {
    const stat = statSync(path);
    if (!stat.isFile()) return `cannot send '${path}': not a regular file`;
    return { path, name: basename(path), size: stat.size };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return `cannot send '${path}': ${code === 'ENOENT' ? 'no such file' : (error as Error).message}`;
  }
}

interface SentFile {
  readonly name: string;
  readonly size: number;
  readonly sha256: string;
}

/** The sending side of one connection: sends the files in turn, and follows the receiver's replies. */
class SendSession {
  readonly sent: SentFile[] = [];
  closeInfo: CloseInfo | undefined;
  private buffered = 0;
  /** Data bytes sent, and reported written by the receiver. */
  private offered = 0;
  private written = 0;
  private verdict: Extract<ReceiverMessage, { type: 'ok' }> | undefined;
  private failure: Error | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly subscriptions = new Subscription();
  private readonly window: number;
  /** From the first file's start to the last file's confirmation: the time base of every figure shown. */
  private started: number | undefined;
  private confirmed: number | undefined;
  /** The file being sent: its progress follows the bytes the receiver reports written. */
  private current: { readonly progress: Progress; readonly base: number; readonly size: number } | undefined;

  constructor(
    readonly conn: Connection,
    private readonly files: readonly FileToSend[],
    private readonly chunkSize: number,
  ) {
    this.window = writeWindow(chunkSize);
    // The receiver's messages: on the control channel, or on channel 0 from a receiver without
    // channels; both are read, so that either placement works (transfer-protocol.ts).
    const control = controlChannel(conn);
    for (const messages$ of control.id === 0 ? [conn.messages$] : [conn.messages$, control.messages$]) {
      this.subscriptions.add(
        messages$.subscribe({
          next: (message) => this.onMessage(message),
          error: (error: unknown) => this.fail(error instanceof Error ? error : new Error(String(error))),
          complete: () => this.fail(new Error('the receiver closed the connection before confirming every file')),
        }),
      );
    }
    this.subscriptions.add(conn.closed$.subscribe((info) => (this.closeInfo = info)));
    this.subscriptions.add(
      conn.bufferedBytes$.subscribe((bytes) => {
        this.buffered = bytes;
        if (this.waiters.size > 0) this.wake();
      }),
    );
  }

  /** Sends every file; resolves once the receiver confirmed the last one, rejects at the first failure. */
  async run(): Promise<void> {
    for (const file of this.files) await this.sendFile(file);
  }

  /** Stops following the connection; a transfer still running fails (it stops reading the file). */
  stop(): void {
    this.fail(new Error('stopped'));
    this.subscriptions.unsubscribe();
  }

  summary(peer: string): string {
    const bytes = this.sent.reduce((sum, f) => sum + f.size, 0);
    const count = this.sent.length === this.files.length ? `${this.files.length} file${this.files.length === 1 ? '' : 's'}` : `${this.sent.length} of ${this.files.length} files`;
    const ms = this.started === undefined ? 0 : (this.confirmed ?? performance.now()) - this.started;
    return [`sent ${count} to ${peer}: ${formatAmount(bytes, ms)}`, ...statsLines(this.conn.stats)].join('\n') + '\n';
  }

  private async sendFile(file: FileToSend): Promise<void> {
    const progress = new Progress(file.name, file.size);
    const started = progress.started;
    this.started ??= started;
    // Bytes read run ahead of bytes delivered by up to the write window (32 MiB): counting them
    // made the progress rate disagree with the summary. Progress counts what the receiver wrote.
    this.current = { progress, base: this.offered, size: file.size };
    this.verdict = undefined;
    try {
      await this.push(encodeControl({ type: 'file', version: TRANSFER_VERSION, name: file.name, size: file.size }), 0);
      const hash = createHash('sha256');
      let read = 0;
      if (file.size > 0) {
        // Pull-based: the next chunk is read only once this one is queued.
        const stream = createReadStream(file.path, { highWaterMark: this.chunkSize, start: 0, end: file.size - 1 });
        try {
          for await (const chunk of stream as AsyncIterable<Buffer>) {
            hash.update(chunk);
            await this.push(chunk, chunk.length);
            read += chunk.length;
          }
        } catch (error) {
          if (error === this.failure) throw error;
          throw new Error(`cannot read '${file.path}': ${(error as Error).message}`);
        } finally {
          stream.destroy();
        }
      }
      if (read !== file.size) throw new Error(`'${file.path}' changed while being sent: ${read} of ${file.size} bytes read`);
      const sha256 = hash.digest('hex');
      await this.push(encodeControl({ type: 'end', sha256 }), 0);
      await this.until(() => this.verdict !== undefined);
      const verdict = this.verdict!;
      if (verdict.name !== file.name || verdict.size !== file.size || verdict.sha256 !== sha256) {
        throw new Error(`the receiver confirmed ${verdict.name} (${verdict.size} bytes, SHA-256 ${verdict.sha256}) instead of ${file.name} (${file.size} bytes, SHA-256 ${sha256})`);
      }
      const now = performance.now();
      this.confirmed = now;
      progress.update(file.size, now);
      progress.finish(now);
      this.sent.push({ name: file.name, size: file.size, sha256 });
      process.stdout.write(`sent ${file.name}: ${formatAmount(file.size, now - started)}, SHA-256 ${sha256} verified by the receiver\n`);
    } finally {
      progress.finish();
      this.current = undefined;
    }
  }

  /** Sends `message` once it fits in the send buffer and (for data) in the receiver's write window. */
  private async push(message: Uint8Array, dataBytes: number): Promise<void> {
    const fits = (): boolean =>
      this.buffered + message.length <= this.conn.maxBufferedBytes && this.offered + dataBytes - this.written <= this.window;
    while (!fits()) await this.until(fits);
    if (this.failure !== undefined) throw this.failure;
    this.conn.send$.next(message);
    this.offered += dataBytes;
  }

  private async until(condition: () => boolean): Promise<void> {
    for (;;) {
      if (this.failure !== undefined) throw this.failure;
      if (condition()) return;
      await new Promise<void>((resolve) => this.waiters.add(resolve));
    }
  }

  private wake(): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const resolve of waiters) resolve();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.wake();
  }

  private onMessage(bytes: Uint8Array): void {
    const message = decodeReceiverMessage(bytes);
    if (typeof message === 'string') return this.fail(new Error(message));
    switch (message.type) {
      case 'written':
        this.written = Math.max(this.written, message.bytes);
        // 100 % only at the confirmation (after the receiver's flush and SHA-256), at the summary's instant.
        if (this.current !== undefined) this.current.progress.update(Math.min(this.current.size - 1, this.written - this.current.base));
        break;
      case 'ok':
        this.written = Math.max(this.written, message.written);
        this.verdict = message;
        break;
      case 'error':
        return this.fail(new Error(`the receiver refused ${message.name === '' ? 'the transfer' : message.name}: ${message.reason}`));
    }
    this.wake();
  }
}

