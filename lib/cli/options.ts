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

/**
 * Parses `argv` strictly (unknown flags and missing values are usage errors); adds -h/--help.
 * The command line is checked here first, so that every mistake is reported in our words (with
 * "did you mean" for near misses) rather than parseArgs's, and so that a negative number after a
 * flag that takes a value is that value (parseArgs would call `--linger -5` ambiguous).
 */
export function parseCommandLine(command: string, argv: readonly string[], options: OptionsConfig, allowPositionals: boolean): ParsedCommandLine {
  const all: OptionsConfig = { ...options, help: { type: 'boolean', short: 'h' } };
  const flags = Object.keys(all).map((name) => `--${name}`);
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      if (!allowPositionals && i + 1 < argv.length) throw new UsageError(`unexpected argument '${argv[i + 1]}'`, command);
      args.push(...argv.slice(i));
      break;
    }
    if (arg === '-h') {
      args.push(arg);
      continue;
    }
    if (!arg.startsWith('-') || arg === '-') {
      if (!allowPositionals) throw new UsageError(`unexpected argument '${arg}'`, command);
      args.push(arg);
      continue;
    }
    const [flag, ...rest] = arg.split('=');
    const inline = rest.length > 0 ? rest.join('=') : undefined;
    const name = flag!.startsWith('--') ? flag!.slice(2) : undefined;
    const option = name === undefined || !Object.hasOwn(all, name) ? undefined : all[name];
    if (option === undefined) throw new UsageError(`unknown option '${flag}'${didYouMean(flag!, flags)}`, command);
    if (option.type === 'boolean') {
      if (inline !== undefined) throw new UsageError(`${flag} takes no value`, command);
      args.push(arg);
      continue;
    }
    if (inline !== undefined) {
      args.push(arg);
      continue;
    }
    const next = argv[i + 1];
    // A value may be negative (then out of range, said so by the range check), never another flag.
    if (next === undefined || (next.startsWith('-') && !/^-\d/.test(next))) {
      throw new UsageError(`missing value for ${flag}${next === undefined ? '' : ` (before '${next}'; a value starting with '-' is written ${flag}=VALUE)`}`, command);
    }
    args.push(`${flag}=${next}`);
    i++;
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args, options: all, allowPositionals, strict: true });
  } catch (error) {
    // Not expected after the checks above; parseArgs's messages may span lines: one line on stderr.
    throw new UsageError((error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, ' '), command);
  }
  const values: Record<string, string | boolean | undefined> = {};
  for (const [name, value] of Object.entries(parsed.values)) {
    // Without `multiple`, a flag given twice keeps its last value; arrays do not occur.
    values[name] = Array.isArray(value) ? value[value.length - 1] : value;
  }
  return { values, positionals: parsed.positionals, help: values['help'] === true };
}

/**
 * " (did you mean X?)" for the candidate closest to `given` when it is a near miss (a typo or
 * two, a swapped pair, or an unambiguous prefix), else "".
 */
export function didYouMean(given: string, candidates: readonly string[]): string {
  const prefixed = given.length >= 4 ? candidates.filter((c) => c.startsWith(given)) : [];
  if (prefixed.length === 1) return ` (did you mean ${prefixed[0]}?)`;
  const core = given.replace(/^-+/, '');
  const allowed = Math.min(2, Math.max(1, Math.floor(core.length / 4)));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(given, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best !== undefined && bestDistance <= allowed ? ` (did you mean ${best}?)` : '';
}

/** Edit distance counting an insertion, deletion, substitution or swap of neighbours as one. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}

/** A decimal integer (optionally signed); anything else is a usage error naming `name`. Ranges are the library's business. */
export function parseInteger(raw: string, name: string, command: string): number {
  const value = /^[+-]?\d+$/.test(raw.trim()) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(value)) throw new UsageError(invalidValue(name, raw, 'an integer'), command);
  return value;
}

/** The one wording of a bad value: "invalid value for --port: '70000' (expected an integer from 0 to 65535)". */
export function invalidValue(name: string, raw: string | number, expected: string): string {
  return `invalid value for ${name}: '${raw}' (expected ${expected})`;
}

/** An integer from `min` to `max`, or a usage error in the one wording. */
export function checkRange(value: number, min: number, max: number, name: string, command: string): number {
  if (value < min || value > max) throw new UsageError(invalidValue(name, value, `an integer from ${min} to ${max}`), command);
  return value;
}

/**
 * `host:port` (or `[v6]:port`) given where HOST and PORT are two arguments: the two, to suggest
 * the right command line; undefined for anything else (a bare IPv6 address included).
 */
export function splitHostPort(text: string): { host: string; port: string } | undefined {
  const match = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  return match === null ? undefined : { host: match[1]!, port: match[2]! };
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

/** Library option name → command-line name, for the protocol flags and the commands' own. */
const PROTOCOL_NAMES: Readonly<Record<string, string>> = {
  ...Object.fromEntries(PROTOCOL_FLAGS.map((f) => [f.key, `--${f.flag}`])),
  maxConnections: '--max-connections',
  maxBufferedBytes: '--max-buffered-bytes',
};
const OPTION_NAME = new RegExp(`\\b(${Object.keys(PROTOCOL_NAMES).join('|')})\\b`, 'g');

/**
 * The library's texts name options as in code ("raise connectTimeout"); on the command line they
 * are flags ("raise --connect-timeout"). The library's wording stays; the CLI translates it.
 */
export function flagNames(text: string): string {
  return text.replace(OPTION_NAME, (name) => PROTOCOL_NAMES[name]!);
}

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

/** The library's rejection in the CLI's one wording, naming the flag: "invalid value for --ping-interval: '0' (expected …)". */
export function describeInvalidOption(error: InvalidOptionError, names: Readonly<Record<string, string>> = {}): string {
  const name = names[error.option] ?? PROTOCOL_NAMES[error.option] ?? error.option;
  // The library says "option NAME = VALUE is invalid: expected WHAT".
  const match = /^option .+? = (.*) is invalid: expected (.*)$/s.exec(error.message);
  return match === null ? flagNames(error.message) : invalidValue(name, match[1]!, match[2]!);
}

/** An address as `host:port`, with brackets around an IPv6 address. */
export function formatAddress(address: string, port: number): string {
  return `${address.includes(':') ? `[${address}]` : address}:${port}`;
}

/** The command running, for the prefix of what it prints on stderr ('' before one is chosen). */
let currentCommand = '';

export function setCommand(command: string): void {
  currentCommand = command;
}

/** "rx-rudp connect" (or "rx-rudp" at the top level). */
function program(command: string): string {
  return command === '' ? 'rx-rudp' : `rx-rudp ${command}`;
}

/** One line on stderr, prefixed with the program and command, the library's option names as flags. */
export function warn(message: string): void {
  process.stderr.write(`${program(currentCommand)}: ${flagNames(message)}\n`);
}

/** A usage error, in the one style: "rx-rudp connect: unknown option '--prot' (did you mean --port?); see 'rx-rudp connect --help'". */
export function usageErrorLine(error: UsageError): string {
  return `${program(error.command)}: ${error.message}; see '${program(error.command)} --help'\n`;
}
