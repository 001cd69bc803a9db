#!/usr/bin/env node
/**
 * The `rx-rudp` command: dispatches to a subcommand, prints the top-level help, and maps
 * outcomes to exit codes (0 ok, 1 connection failure, 2 usage error).
 */
import { InvalidOptionError } from '../index';
import { runConnect } from './connect';
import { runDemo } from './demo';
import { runEcho } from './echo';
import { runKeygen } from './keys';
import { runReceive } from './receive';
import { runSend } from './send';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError, describeInvalidOption, didYouMean, setCommand, usageErrorLine, warn } from './options';

interface Command {
  readonly summary: string;
  /** Runs with the arguments after the command name; resolves with the exit code; may throw UsageError. */
  readonly run: (argv: string[]) => Promise<number>;
}

/** The subcommands, in help order. To add one: a module exporting `runX(argv)`, and an entry here. */
const COMMANDS: Readonly<Record<string, Command>> = {
  echo: { summary: 'run a listener that echoes every message and DIRECT datagram back', run: runEcho },
  connect: { summary: 'connect to a listener: stdin lines out as messages, messages in as stdout lines', run: runConnect },
  send: { summary: 'send files to a receiver: streamed, SHA-256 verified, with progress', run: runSend },
  receive: { summary: 'receive files from senders into a directory, SHA-256 verified', run: runReceive },
  demo: { summary: 'listener and starter over an in-process lossy network, every byte verified', run: runDemo },
  keygen: { summary: 'write a key pair for encrypted connections (--key, --server-key)', run: runKeygen },
};

const USAGE = `Usage: rx-rudp <command> [options]

Reliable messages over UDP.

Commands:
${Object.entries(COMMANDS)
  .map(([name, command]) => `  ${name.padEnd(10)} ${command.summary}`)
  .join('\n')}

Run 'rx-rudp <command> --help' for the options of a command.

Exit codes:
  0  success
  1  connection failure: connect timeout, refusal, peer timeout, abnormal close, cannot bind
  2  usage error: unknown command or flag, missing or invalid argument or option value
`;

/** Runs the command line `argv` (without node and the script); resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  try {
    if (name === '--help' || name === '-h') return help(undefined);
    if (name === 'help') return await help(rest[0]);
    if (name === undefined) throw new UsageError('missing command', '');
    const command = lookUp(name);
    setCommand(name);
    return await command.run(rest);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(usageErrorLine(error));
      return EXIT_USAGE;
    }
    if (error instanceof InvalidOptionError) {
      // Only reached if a command let the library check an option outside withFlagNames.
      process.stderr.write(usageErrorLine(new UsageError(describeInvalidOption(error), name !== undefined && Object.hasOwn(COMMANDS, name) ? name : '')));
      return EXIT_USAGE;
    }
    warn(error instanceof Error ? error.message : String(error));
    return EXIT_FAILURE;
  }
}

/** `rx-rudp --help` or `rx-rudp help [command]`. */
async function help(name: string | undefined): Promise<number> {
  if (name === undefined) {
    process.stdout.write(USAGE);
    return EXIT_OK;
  }
  return lookUp(name).run(['--help']);
}

/** The command called `name`, or a usage error (with the nearest command when it is a near miss). */
function lookUp(name: string): Command {
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (command !== undefined) return command;
  if (name.startsWith('-')) throw new UsageError(`unknown option '${name}' (a command comes first)`, '');
  throw new UsageError(`unknown command '${name}'${didYouMean(name, Object.keys(COMMANDS))}`, '');
}

/** If something still holds the event loop this long after the command ended, exit anyway. */
const EXIT_GRACE_MS = 2000;

if (require.main === module) {
  // A closed stdout or stderr (e.g. piped into `head`) must not crash the process: output is dropped.
  process.stdout.on('error', () => undefined);
  process.stderr.on('error', () => undefined);
  void main(process.argv.slice(2)).then((code) => {
    // Exit by letting the event loop drain, so that pending stdout/stderr writes are flushed;
    // the unref'd timer only fires if something (a stray handle) keeps the process alive.
    process.exitCode = code;
    setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
  });
}
