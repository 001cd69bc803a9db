/**
 * Shared command-line plumbing: exit codes, usage errors, parsing with `node:util`'s parseArgs,
 * the protocol flags (→ ProtocolOptions) and their usage text.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DEFAULTS, InvalidOptionError, type ProtocolOptions } from '../index';

/** Exit codes, documented in the top-level help. */
export const EXIT_OK = 0;
/** Connection failure: connect timeout, refusal, peer timeout, abnormal close, cannot bind. */
export const EXIT_FAILURE = 1;
/** Usage error: unknown command or flag, missing or invalid argument. */
export const EXIT_USAGE = 2;

/** A mistake on the command line; `command` picks the help to point to ('' for the top level). */
export class UsageError extends Error {
  override name = 'UsageError';
  constructor(
    message: string,
    readonly command: string,
  ) {
    super(message);
  }
}

type ProtocolKey = 'deliveryTimeout' | 'pingInterval' | 'pingPacketCount' | 'connectTimeout' | 'maxDatagramSize' | 'receiveWindow' | 'maxMessageSize';

interface ProtocolFlag {
  readonly flag: string;
  readonly key: ProtocolKey;
  readonly value: string;
  readonly description: string;
}

/** The protocol options that can be set from the command line, in help order. */
export const PROTOCOL_FLAGS: readonly ProtocolFlag[] = [
  { flag: 'delivery-timeout', key: 'deliveryTimeout', value: 'MS', description: 'initial and largest retransmission timeout, and CONNECT retry period' },
  { flag: 'ping-interval', key: 'pingInterval', value: 'MS', description: 'idle time before a PING, and time between PINGs' },
  { flag: 'ping-packet-count', key: 'pingPacketCount', value: 'N', description: 'unanswered PINGs in a row that declare the peer dead' },
  { flag: 'connect-timeout', key: 'connectTimeout', value: 'MS', description: 'how long connect tries before giving up' },
  { flag: 'max-datagram-size', key: 'maxDatagramSize', value: 'BYTES', description: 'largest UDP payload sent or accepted (576..65507)' },
  { flag: 'receive-window', key: 'receiveWindow', value: 'N', description: 'DATA packets buffered beyond the cumulative ack (1..65535)' },
  { flag: 'max-message-size', key: 'maxMessageSize', value: 'BYTES', description: 'largest message accepted' },
];

/** Usage lines for the protocol flags, with the library's defaults. */
export function protocolUsage(): string {
  return PROTOCOL_FLAGS.map((f) => usageLine(`--${f.flag} ${f.value}`, `${f.description} (default ${DEFAULTS[f.key]})`)).join('\n');
}

/** One aligned line of an options list. */
export function usageLine(left: string, right: string): string {
  return `  ${left.padEnd(26)} ${right}`;
}

type OptionsConfig = NonNullable<ParseArgsConfig['options']>;

/** parseArgs option descriptors of the protocol flags (all integers, read as strings). */
export function protocolParseOptions(): OptionsConfig {
  const options: OptionsConfig = {};
  for (const f of PROTOCOL_FLAGS) options[f.flag] = { type: 'string' };
  return options;
}

export interface ParsedCommandLine {
  readonly values: Readonly<Record<string, string | boolean | undefined>>;
  readonly positionals: readonly string[];
  readonly help: boolean;
}

/** Parses `argv` strictly (unknown flags and missing values are usage errors); adds -h/--help. */
export function parseCommandLine(command: string, argv: readonly string[], options: OptionsConfig, allowPositionals: boolean): ParsedCommandLine {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (error) {
    // parseArgs's messages may span lines: one line on stderr.
    throw new UsageError((error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, ' '), command);
  }
  const values: Record<string, string | boolean | undefined> = {};
  for (const [name, value] of Object.entries(parsed.values)) {
    // Without `multiple`, a flag given twice keeps its last value; arrays do not occur.
    values[name] = Array.isArray(value) ? value[value.length - 1] : value;
  }
  return { values, positionals: parsed.positionals, help: values['help'] === true };
}

/** A decimal integer (optionally signed); anything else is a usage error naming `name`. Ranges are the library's business. */
export function parseInteger(raw: string, name: string, command: string): number {
  const value = /^[+-]?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(value)) throw new UsageError(`invalid value for ${name}: '${raw}' is not an integer`, command);
  return value;
}

/** The string value of a flag, if given. */
export function stringFlag(values: ParsedCommandLine['values'], flag: string): string | undefined {
  const value = values[flag];
  return typeof value === 'string' ? value : undefined;
}

/** An integer flag, if given. */
export function integerFlag(values: ParsedCommandLine['values'], flag: string, command: string): number | undefined {
  const raw = stringFlag(values, flag);
  return raw === undefined ? undefined : parseInteger(raw, `--${flag}`, command);
}

/** The protocol options given on the command line (only those given: the library fills defaults). */
export function protocolOptions(values: ParsedCommandLine['values'], command: string): ProtocolOptions {
  const options: ProtocolOptions = {};
  for (const f of PROTOCOL_FLAGS) {
    const value = integerFlag(values, f.flag, command);
    if (value !== undefined) options[f.key] = value;
  }
  return options;
}

/** Library option name → command-line name, for the protocol flags. */
const PROTOCOL_NAMES: Readonly<Record<string, string>> = Object.fromEntries(PROTOCOL_FLAGS.map((f) => [f.key, `--${f.flag}`]));

/**
 * Runs `build` (a call to `listen` or `connect`, which check their options when called) and turns
 * an InvalidOptionError into a usage error that names the command-line flag instead of the
 * library's option. `names` adds the command's own names (e.g. port → '--port' or 'PORT').
 */
export function withFlagNames<T>(command: string, names: Readonly<Record<string, string>>, build: () => T): T {
  try {
    return build();
  } catch (error) {
    if (error instanceof InvalidOptionError) throw new UsageError(describeInvalidOption(error, names), command);
    throw error;
  }
}

/** The library's message with the option renamed to its flag: "option --ping-interval = 0 is invalid: expected …". */
export function describeInvalidOption(error: InvalidOptionError, names: Readonly<Record<string, string>> = {}): string {
  const name = names[error.option] ?? PROTOCOL_NAMES[error.option];
  return name === undefined ? error.message : error.message.replace(`option ${error.option}`, `option ${name}`);
}

/** An address as `host:port`, with brackets around an IPv6 address. */
export function formatAddress(address: string, port: number): string {
  return `${address.includes(':') ? `[${address}]` : address}:${port}`;
}

/** One line on stderr, prefixed with the program name. */
export function warn(message: string): void {
  process.stderr.write(`rx-rudp: ${message}\n`);
}
