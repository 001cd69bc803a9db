/**
 * `rx-rudp demo` (and `npm start`): a listener and a starter in one process, joined by the
 * testing kit's impaired network in real time, exchanging messages of several sizes. Every
 * message is echoed back and both copies are verified by SHA-256. Exit 0 only if all arrived intact.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Subscription } from 'rxjs';
import { connect, listen, realTimeScheduler, type Connection, type ConnectionStats } from '../index';
import { VirtualNetwork } from '../testing/index';
import { EXIT_FAILURE, EXIT_OK, UsageError, checkRange, integerFlag, invalidValue, parseCommandLine, usageLine, warn } from './options';

const COMMAND = 'demo';
const LISTENER = '10.0.0.2';
const STARTER = '10.0.0.1';
const PORT = 7000;
const DEFAULT_SIZES = '5,100,10000,10000,100000,1048576';

export const DEMO_USAGE = `Usage: rx-rudp demo [--loss PCT] [--delay MS] [--jitter MS] [--reorder PCT] [--sizes LIST]

Runs a listener and a starter in this process over an in-process impaired network (real time),
sends messages of several sizes, has each echoed back, and verifies every byte by SHA-256.
Prints a progress line, then a summary. Exit 0 when everything arrived intact, 1 otherwise.

Options:
${usageLine('--loss PCT', 'datagram loss each way, in percent (default 5)')}
${usageLine('--delay MS', 'one-way delay (default 20)')}
${usageLine('--jitter MS', 'extra random delay 0..MS (default 5)')}
${usageLine('--reorder PCT', 'datagrams held back so later ones overtake them, in percent (default 2)')}
${usageLine('--sizes LIST', `message sizes in bytes, comma-separated (default ${DEFAULT_SIZES})`)}
${usageLine('--seed N', 'seed of the network impairment (default 1)')}
${usageLine('-h, --help', 'show this help')}
`;

export async function runDemo(argv: string[]): Promise<number> {
  const { values } = parseCommandLine(
    COMMAND,
    argv,
    {
      loss: { type: 'string' },
      delay: { type: 'string' },
      jitter: { type: 'string' },
      reorder: { type: 'string' },
      sizes: { type: 'string' },
      seed: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    false,
  );
  if (values['help'] === true) {
    process.stdout.write(DEMO_USAGE);
    return EXIT_OK;
  }
  const loss = checkRange(integerFlag(values, 'loss', COMMAND) ?? 5, 0, 90, '--loss', COMMAND);
  const reorder = checkRange(integerFlag(values, 'reorder', COMMAND) ?? 2, 0, 100, '--reorder', COMMAND);
  const delay = integerFlag(values, 'delay', COMMAND) ?? 20;
  const jitter = integerFlag(values, 'jitter', COMMAND) ?? 5;
  const seed = integerFlag(values, 'seed', COMMAND) ?? 1;
  const sizes = String(values['sizes'] ?? DEFAULT_SIZES)
    .split(',')
    .map((s) => Number(s.trim()));
  if (sizes.some((n) => !Number.isInteger(n) || n < 0 || n > 16 * 1024 * 1024)) {
    throw new UsageError(invalidValue('--sizes', String(values['sizes']), 'comma-separated integers from 0 to 16777216'), COMMAND);
  }

  const messages = sizes.map((size) => randomBytes(size));
  const digests = messages.map(sha256);
  const totalBytes = sizes.reduce((a, b) => a + b, 0);
  const impairment = { loss: loss / 100, delay, jitter, reorder: reorder / 100 };
  const network = new VirtualNetwork({ scheduler: realTimeScheduler, seed, default: impairment });
  process.stdout.write(
    `rx-rudp demo: ${messages.length} messages (${formatBytes(totalBytes)}) each way over a link with ` +
      `${loss}% loss, ${delay} ms delay, ${jitter} ms jitter, ${reorder}% reordering\n`,
  );

  const started = performance.now();
  const result = await new Promise<{ ok: boolean; problem?: string; starter?: ConnectionStats; listener?: ConnectionStats }>((resolve) => {
    const subscriptions = new Subscription();
    let echoedOk = 0;
    let receivedOk = 0;
    let listenerSide: Connection | undefined;
    const progress = new Progress(totalBytes * 2);
    const finish = (ok: boolean, starterSide: Connection | undefined, problem?: string): void => {
      progress.done();
      const outcome = { ok, ...(problem === undefined ? {} : { problem }), ...(starterSide ? { starter: starterSide.stats } : {}), ...(listenerSide ? { listener: listenerSide.stats } : {}) };
      subscriptions.unsubscribe();
      resolve(outcome);
    };
    subscriptions.add(
      listen({ host: LISTENER, port: PORT, socketFactory: network.socketFactory(LISTENER) }).subscribe({
        next: (conn) => {
          listenerSide = conn;
          conn.messages$.subscribe({
            next: (m) => {
              if (sha256(m) === digests[receivedOk]) receivedOk++;
              progress.add(m.length);
              conn.send$.next(m);
            },
            error: () => undefined, // reported by the starter side
          });
        },
        error: (e: Error) => finish(false, undefined, e.message),
      }),
    );
    subscriptions.add(
      connect({ host: LISTENER, port: PORT, socketFactory: network.socketFactory(STARTER) }).subscribe({
        next: (conn) => {
          conn.messages$.subscribe({
            next: (m) => {
              const expected = digests[echoedOk];
              if (sha256(m) !== expected) return finish(false, conn, `echo of message ${echoedOk + 1} differs from what was sent`);
              echoedOk++;
              progress.add(m.length);
              if (echoedOk === messages.length) finish(receivedOk === messages.length, conn, receivedOk === messages.length ? undefined : 'the listener saw a corrupted message');
            },
            error: (e: Error) => finish(false, conn, e.message),
          });
          for (const m of messages) conn.send$.next(m);
          if (messages.length === 0) finish(true, conn);
        },
        error: (e: Error) => finish(false, undefined, e.message),
      }),
    );
  });
  const seconds = (performance.now() - started) / 1000;

  if (!result.ok) {
    warn(`demo failed: ${result.problem ?? 'unknown reason'}`);
    return EXIT_FAILURE;
  }
  const s = result.starter!;
  const l = result.listener!;
  const net = network.stats().total;
  process.stdout.write(
    [
      `delivered and verified (SHA-256): ${messages.length} messages each way, ${formatBytes(totalBytes * 2)} in ${seconds.toFixed(2)} s ` +
        `(${formatBytes((totalBytes * 2) / seconds)}/s goodput)`,
      `round trip: ${s.rtt?.toFixed(1) ?? '-'} ms smoothed, RTO ${s.rto.toFixed(1)} ms`,
      `network: ${net.sent} datagrams sent, ${net.dropped} lost, ${net.duplicated} duplicated`,
      `starter:  ${s.dataPacketsSent} DATA sent, ${s.retransmissions} retransmitted, ${s.repeatsSent} REPEATs sent, ${s.acksSent} acks, ${s.pingsSent} pings`,
      `listener: ${l.dataPacketsSent} DATA sent, ${l.retransmissions} retransmitted, ${l.repeatsSent} REPEATs sent, ${l.acksSent} acks, ${l.pingsSent} pings`,
      'ok',
    ].join('\n') + '\n',
  );
  return EXIT_OK;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function formatBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

/** One progress line: rewritten in place on a terminal, a line per quarter otherwise. */
class Progress {
  private bytes = 0;
  private lastQuarter = 0;
  private readonly tty = process.stderr.isTTY === true;
  private readonly started = performance.now();

  constructor(private readonly total: number) {}

  add(n: number): void {
    this.bytes += n;
    const fraction = this.total === 0 ? 1 : this.bytes / this.total;
    const line = `progress: ${(fraction * 100).toFixed(0).padStart(3)}%  ${formatBytes(this.bytes)} of ${formatBytes(this.total)}  ${formatBytes(this.bytes / ((performance.now() - this.started) / 1000))}/s`;
    if (this.tty) process.stderr.write(`\r${line}`);
    else if (Math.floor(fraction * 4) > this.lastQuarter) {
      this.lastQuarter = Math.floor(fraction * 4);
      process.stderr.write(`${line}\n`);
    }
  }

  done(): void {
    if (this.tty) process.stderr.write('\n');
  }
}
