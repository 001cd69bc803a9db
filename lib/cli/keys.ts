/**
 * Keys on the command line: `rx-rudp keygen --out FILE` writes a listener's private key (mode
 * 0600) and FILE.pub; `--key FILE` (echo, receive) makes a listener require encryption with it;
 * `--server-key PUBLIC` (connect, send) makes a starter require it, with the listener's public key
 * as its `.pub` line or the path of that file.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { generateKeyPair } from '../index';
import type { SecureConnectOptions } from '../api/connect';
import type { SecureListenOptions } from '../api/listen';
import { EXIT_OK, UsageError, parseCommandLine, stringFlag, usageLine, type ParsedCommandLine } from './options';

const COMMAND = 'keygen';

export const KEYGEN_USAGE = `Usage: rx-rudp keygen --out FILE [--force]

Writes a new X25519 key pair for encrypted connections: the private key to FILE (mode 0600;
give it to 'echo' or 'receive' with --key FILE, and keep it secret) and the public key, one
line of base64, to FILE.pub (give that line, or the file, to 'connect' or 'send' with
--server-key). Prints the public key on stdout.

Options:
${usageLine('--out FILE', 'where to write the private key (FILE.pub gets the public key)')}
${usageLine('--force', 'overwrite FILE and FILE.pub if they exist')}
${usageLine('-h, --help', 'show this help')}

Exit codes: 0 written, 1 cannot write, 2 usage error.
`;

export const KEY_USAGE = usageLine('--key FILE', "require encryption, with the private key in FILE (from 'rx-rudp keygen')");
export const SERVER_KEY_USAGE = usageLine('--server-key PUBLIC', "require encryption with the listener's public key: its .pub line, or the .pub file");

export async function runKeygen(argv: readonly string[]): Promise<number> {
  const args = parseCommandLine(COMMAND, argv, { out: { type: 'string' }, force: { type: 'boolean' } }, false);
  if (args.help) {
    process.stdout.write(KEYGEN_USAGE);
    return EXIT_OK;
  }
  const out = stringFlag(args.values, 'out');
  if (out === undefined || out === '') throw new UsageError('missing --out FILE', COMMAND);
  const force = args.values['force'] === true;
  for (const path of [out, `${out}.pub`]) {
    if (!force && existsSync(path)) throw new UsageError(`${path} exists: choose another --out, or pass --force to overwrite it`, COMMAND);
  }
  const keys = generateKeyPair();
  // Mode 0600 from the start: the private key is never readable by others, not even briefly.
  writeFileSync(out, `${keys.privateKey}\n`, { mode: 0o600, flag: force ? 'w' : 'wx' });
  writeFileSync(`${out}.pub`, `${keys.publicKey}\n`, { mode: 0o644, flag: force ? 'w' : 'wx' });
  process.stdout.write(`${keys.publicKey}\n`);
  process.stderr.write(`wrote ${out} (private: keep it secret) and ${out}.pub (public: give it to starters)\n`);
  return EXIT_OK;
}

/** `--key FILE` as listen()'s `secure` option (encryption required), or undefined without the flag. */
export function listenerKey(values: ParsedCommandLine['values'], command: string): SecureListenOptions | undefined {
  const path = stringFlag(values, 'key');
  if (path === undefined) return undefined;
  return { privateKey: readKeyFile(path, '--key', command) };
}

/** `--server-key PUBLIC` as connect()'s `secure` option, or undefined without the flag. */
export function serverKey(values: ParsedCommandLine['values'], command: string): SecureConnectOptions | undefined {
  const value = stringFlag(values, 'server-key');
  if (value === undefined) return undefined;
  const text = value.trim();
  // The .pub line itself (44 characters of base64), or the path of a file holding it.
  if (/^[A-Za-z0-9+/]{43}=$/.test(text)) return { serverPublicKey: text };
  return { serverPublicKey: readKeyFile(value, '--server-key', command) };
}

function readKeyFile(path: string, flag: string, command: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (error) {
    throw new UsageError(`${flag} ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)}); make one with 'rx-rudp keygen --out FILE'`, command);
  }
}
