/**
 * Encryption from a shell: `keygen` writes the pair (private 0600, public one line), `echo --key`
 * requires encryption, `connect --server-key` uses it (the .pub line or the file), a wrong key or
 * no key makes `connect` exit 1 with a message that says so.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cli, HOST, useBuiltCli } from './cli-process';

jest.setTimeout(60_000);
useBuiltCli();

const dir = mkdtempSync(join(tmpdir(), 'rx-rudp-keys-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function keygen(name: string): Promise<{ file: string; publicKey: string }> {
  const file = join(dir, name);
  const cli = new Cli(['keygen', '--out', file], { stdin: false });
  expect((await cli.exit()).code).toBe(0);
  return { file, publicKey: cli.stdout.trim() };
}

async function secureEcho(keyFile: string): Promise<{ cli: Cli; port: number }> {
  const cli = new Cli(['echo', '--host', HOST, '--port', '0', '--key', keyFile]);
  const match = await cli.waitFor('stdout', /^listening 127\.0\.0\.1:(\d+)\n/, 15_000);
  return { cli, port: Number(match[1]) };
}

test('keygen writes a private key only its owner can read, and the public key as one line', async () => {
  const { file, publicKey } = await keygen('server.key');
  expect(statSync(file).mode & 0o777).toBe(0o600);
  expect(readFileSync(`${file}.pub`, 'utf8')).toBe(`${publicKey}\n`);
  expect(publicKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
  expect(readFileSync(file, 'utf8').trim()).not.toBe(publicKey);
  // A second keygen to the same place refuses rather than destroying a key.
  const again = new Cli(['keygen', '--out', file], { stdin: false });
  expect((await again.exit()).code).toBe(2);
  expect(again.stderr).toMatch(/exists.*--force/);
});

test('echo --key and connect --server-key talk, with the .pub line or the .pub file', async () => {
  const { file, publicKey } = await keygen('echo.key');
  const echo = await secureEcho(file);
  for (const serverKey of [publicKey, `${file}.pub`]) {
    const client = new Cli(['connect', HOST, String(echo.port), '--server-key', serverKey, '--linger', '300']);
    client.end('hello\nsecret world\n');
    const exit = await client.exit(15_000);
    expect({ code: exit.code, stdout: client.stdout }).toEqual({ code: 0, stdout: 'hello\nsecret world\n' });
  }
  echo.cli.child.kill('SIGTERM');
  expect((await echo.cli.exit()).code).toBe(0);
});

test('a wrong key, or none, makes connect exit 1 with a message that says so', async () => {
  const { file } = await keygen('real.key');
  const { publicKey: wrong } = await keygen('wrong.key');
  const echo = await secureEcho(file);
  const withWrongKey = new Cli(['connect', HOST, String(echo.port), '--server-key', wrong]);
  withWrongKey.end('hello\n');
  expect((await withWrongKey.exit(15_000)).code).toBe(1);
  expect(withWrongKey.stderr).toMatch(/key/i);
  const plain = new Cli(['connect', HOST, String(echo.port)]);
  plain.end('hello\n');
  expect((await plain.exit(15_000)).code).toBe(1);
  expect(plain.stderr).toMatch(/encryption required/);
  echo.cli.child.kill('SIGTERM');
  await echo.cli.exit();
});

test('a missing key file is a usage error naming the flag', async () => {
  const cli = new Cli(['echo', '--port', '0', '--key', join(dir, 'nope')], { stdin: false });
  expect((await cli.exit()).code).toBe(2);
  expect(cli.stderr).toMatch(/--key .*nope.*keygen/);
});
