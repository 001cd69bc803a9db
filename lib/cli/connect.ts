/**
 * `rx-rudp connect HOST PORT`: stdin lines out as messages, received messages out as stdout lines.
 */
import { SERVER_KEY_USAGE, serverKey } from './keys';
import { Observable, Subscription, switchMap } from 'rxjs';
import { connect, MessageTooLargeError, type Connection } from '../index';
import { LineInput } from './lines';
import {
  EXIT_FAILURE,
  EXIT_OK,
  UsageError,
  checkRange,
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

const COMMAND = 'connect';

/** Default --linger: several round trips on any network a user is likely to be on, short enough to go unnoticed. */
export const DEFAULT_LINGER_MS = 500;

/** Bytes of lines sent but not yet acknowledged beyond which stdin is paused (and resumed below half). */
const HIGH_WATER_BYTES = 4 * 1024 * 1024;

export const CONNECT_USAGE = `Usage: rx-rudp connect HOST PORT [options]

Connects to the listener at HOST:PORT. Every line of stdin is sent as one message (without
its line break); every message received is printed as one line on stdout; DIRECT datagrams
received are printed on stderr, prefixed 'direct: '. Lines typed before the connection is
open are sent once it is.

At the end of stdin, waits until everything sent is acknowledged, then for the peer to go quiet
(no message for --linger ms, so that replies still in flight are printed), closes normally and
exits 0. Also exits 0 when the peer closes normally. Exits 1, with the reason on stderr, on connect
timeout, refusal, peer timeout or any abnormal close; 130 on SIGINT or SIGTERM (the connection
is closed first).

Options:
${SERVER_KEY_USAGE}
${usageLine('--linger MS', `after stdin ends and all is acknowledged, wait until no message came for MS; 0 closes at once (default ${DEFAULT_LINGER_MS})`)}
${protocolUsage()}
${usageLine('-h, --help', 'show this help')}

Exit codes: 0 ok, 1 connection failure, 2 usage error, 130 interrupted.
`;

export const EXIT_INTERRUPTED = 130;

/** Runs the command; resolves with the exit code. Throws UsageError for a bad command line. */
export async function runConnect(argv: readonly string[]): Promise<number> {
  const args = parseCommandLine(COMMAND, argv, { ...protocolParseOptions(), linger: { type: 'string' }, 'server-key': { type: 'string' } }, true);
  if (args.help) {
    process.stdout.write(CONNECT_USAGE);
    return EXIT_OK;
  }
  const [host, portText, ...extra] = args.positionals;
  if (host === undefined) throw new UsageError('missing HOST and PORT', COMMAND);
  const joined = splitHostPort(host);
  if (portText === undefined) {
    throw new UsageError(`missing PORT${joined === undefined ? '' : ` (did you mean 'rx-rudp connect ${joined.host} ${joined.port}'?)`}`, COMMAND);
  }
  if (extra.length > 0) throw new UsageError(`unexpected argument '${extra[0]}'`, COMMAND);
  const port = checkRange(parseInteger(portText, 'PORT', COMMAND), 1, 65535, 'PORT', COMMAND);
  const linger = checkRange(integerFlag(args.values, 'linger', COMMAND) ?? DEFAULT_LINGER_MS, 0, 3_600_000, '--linger', COMMAND);
  const secure = serverKey(args.values, COMMAND);
  const options = { ...protocolOptions(args.values, COMMAND), ...(secure === undefined ? {} : { secure }) };
  const connection$ = withFlagNames(COMMAND, { host: 'HOST', port: 'PORT', 'secure.serverPublicKey': '--server-key' }, () => connect({ ...options, host, port }));

  const input = new LineInput(process.stdin, HIGH_WATER_BYTES);
  return new Promise<number>((resolve) => {
    let subscription: Subscription | undefined;
    const finish = (code: number): void => {
      process.off('SIGINT', interrupt);
      process.off('SIGTERM', interrupt);
      input.detach();
      subscription?.unsubscribe();
      resolve(code);
    };
    const interrupt = (): void => finish(EXIT_INTERRUPTED);
    process.once('SIGINT', interrupt);
    process.once('SIGTERM', interrupt);
    // Keep the subscription while the connection lives: unsubscribing closes it.
    subscription = connection$.pipe(switchMap((connection) => session(connection, input, linger))).subscribe({
      complete: () => finish(EXIT_OK),
      error: (error: unknown) => {
        warn(error instanceof Error ? error.message : String(error));
        finish(EXIT_FAILURE);
      },
    });
  });
}

/**
 * One open connection: prints what arrives, sends the input. Completes when the connection
 * closes normally (after stdin ended, everything was acknowledged and the peer went quiet for
 * `linger` ms, or when the peer closed), errors when it ends abnormally.
 */
function session(connection: Connection, input: LineInput, linger: number): Observable<never> {
  return new Observable<never>((subscriber) => {
    const subscriptions = new Subscription();
    let outstanding = 0;
    /** Lines whose send has not settled yet (a count: empty lines have no bytes). */
    let unsettled = 0;
    let inputEnded = false;
    let quiet: NodeJS.Timeout | undefined;
    const close = (): void => connection.send$.complete();
    // Armed once the input ended and every line settled; restarted by every message received.
    const lingerOn = (): void => {
      if (!inputEnded || unsettled > 0 || subscriber.closed) return;
      clearTimeout(quiet);
      quiet = setTimeout(close, linger);
    };
    subscriptions.add(() => clearTimeout(quiet));
    const acknowledged = (bytes: number): void => {
      outstanding -= bytes;
      unsettled -= 1;
      if (outstanding <= HIGH_WATER_BYTES / 2) input.resume();
      lingerOn();
    };
    // Subscribe first: completing send$ with nothing to send closes the connection at once.
    subscriptions.add(
      connection.direct$.subscribe((payload) => {
        process.stderr.write(Buffer.concat([Buffer.from('direct: '), payload, Buffer.from('\n')]));
        if (quiet !== undefined) lingerOn();
      }),
    );
    subscriptions.add(
      connection.messages$.subscribe({
        next: (message) => {
          process.stdout.write(Buffer.concat([message, Buffer.from('\n')]));
          if (quiet !== undefined) lingerOn();
        },
        error: (error: unknown) => subscriber.error(error),
        complete: () => subscriber.complete(),
      }),
    );
    if (subscriber.closed) return subscriptions;
    input.attach({
      line: (text) => {
        if (subscriber.closed) return;
        const message = Buffer.from(text, 'utf8');
        outstanding += message.length;
        unsettled += 1;
        if (outstanding > HIGH_WATER_BYTES) input.pause();
        subscriptions.add(
          connection.send(message).subscribe({
            complete: () => acknowledged(message.length),
            error: (error: unknown) => {
              acknowledged(message.length);
              // A closed connection is reported by messages$; only a message refused locally is news.
              if (error instanceof MessageTooLargeError && !subscriber.closed) warn(`line not sent: ${error.message}`);
            },
          }),
        );
      },
      end: () => {
        // --linger 0: deliver everything sent, then close normally at once (messages$ completes).
        if (linger === 0) return close();
        inputEnded = true;
        lingerOn();
      },
    });
    return subscriptions;
  });
}
