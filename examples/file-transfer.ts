/**
 * File transfer with the library API, in one process on loopback: the sender streams a file with
 * backpressure (`sendAll` from ./backpressure: the next chunk is read only once the previous one
 * fits in the send buffer), the receiver writes NAME.part, checks the SHA-256, and renames it.
 *
 *   npm run example -- file-transfer [FILE]
 *
 * Without FILE, sends 32 MiB of random bytes made in a temporary directory (removed afterwards).
 * The messages: {"name","size"} (JSON), the bytes in 1 MiB messages, {"sha256"} (JSON); the
 * receiver answers {"ok","sha256"}. `rx-rudp send` / `rx-rudp receive` are the full version
 * (several files, progress, a write window so a slow disk does not fill the receiver's memory).
 *
 * In your project, import from 'rx-rudp' instead of '../lib/index'.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { firstValueFrom, lastValueFrom, ReplaySubject, from, switchMap } from 'rxjs';
import { connect, listen, type Connection } from '../lib/index';
import { sendAll } from './backpressure';

const MIB = 1024 * 1024;
const json = (value: object): Uint8Array => Buffer.from(JSON.stringify(value));
const parse = <T>(message: Uint8Array): T => JSON.parse(Buffer.from(message).toString()) as T;

/** Receiver: one file per connection, into `dir`. */
function receiveFile(conn: Connection, dir: string): void {
  let header: { name: string; size: number } | undefined;
  let received = 0;
  let out: ReturnType<typeof createWriteStream> | undefined;
  const hash = createHash('sha256');
  conn.messages$.subscribe({
    next: (message) => {
      if (header === undefined) {
        header = parse<{ name: string; size: number }>(message);
        if (basename(header.name) !== header.name) return conn.close(); // a name with directories: refused
        out = createWriteStream(join(dir, `${header.name}.part`));
      } else if (received < header.size) {
        received += message.length;
        hash.update(message);
        out!.write(message);
      } else {
        const { sha256 } = parse<{ sha256: string }>(message);
        const part = join(dir, `${header.name}.part`);
        const ok = sha256 === hash.digest('hex');
        out!.end(() => {
          const done = ok ? rename(part, join(dir, header!.name)) : Promise.resolve(rmSync(part));
          void done.then(() => {
            console.log(`receiver: ${header!.name}, ${received} bytes, SHA-256 ${ok ? 'matches: renamed into place' : 'differs: deleted'}`);
            // Answer, and close once the answer is acknowledged: the sender's connect() completes.
            conn.send(json({ ok, sha256 })).subscribe({ complete: () => conn.close(), error: () => undefined });
          });
        });
      }
    },
    error: (e: Error) => console.error(`receiver: ${e.message}`),
  });
}

/** Sender: streams the file, then its SHA-256; resolves with the receiver's verdict. */
async function sendFile(conn: Connection, path: string): Promise<{ ok: boolean; sha256: string }> {
  const verdict = firstValueFrom(conn.messages$); // subscribed now: messages$ is hot
  const size = statSync(path).size;
  conn.send$.next(json({ name: basename(path), size }));
  const hash = createHash('sha256');
  async function* hashed(): AsyncGenerator<Uint8Array> {
    for await (const chunk of createReadStream(path, { highWaterMark: MIB })) {
      hash.update(chunk as Buffer);
      yield chunk as Buffer;
    }
  }
  await sendAll(conn, hashed());
  const sha256 = hash.digest('hex');
  console.log(`sender: ${basename(path)}, ${size} bytes, SHA-256 ${sha256}`);
  conn.send$.next(json({ sha256 }));
  const reply = parse<{ ok: boolean; sha256: string }>(await verdict);
  return { ok: reply.ok && reply.sha256 === sha256, sha256 };
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'rx-rudp-example-'));
  try {
    let path = process.argv[2];
    if (path === undefined) {
      path = join(work, 'example.bin');
      writeFileSync(path, randomBytes(32 * MIB));
    }
    const dir = join(work, 'received');
    mkdirSync(dir);

    const port$ = new ReplaySubject<number>(1);
    const server = listen({ host: '127.0.0.1', port: 0, onListening: (address) => port$.next(address.port) }).subscribe((conn) =>
      receiveFile(conn, dir),
    );
    const port = await firstValueFrom(port$);
    const started = performance.now();
    // connect() completes when the receiver closes, after its verdict.
    const result = await lastValueFrom(connect({ host: '127.0.0.1', port }).pipe(switchMap((conn) => from(sendFile(conn, path)))));
    const seconds = (performance.now() - started) / 1000;
    server.unsubscribe();
    const size = statSync(path).size;
    console.log(result.ok ? `sent and verified ${(size / MIB).toFixed(2)} MiB in ${seconds.toFixed(2)} s` : 'transfer FAILED: SHA-256 mismatch');
    if (!result.ok) process.exitCode = 1;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
