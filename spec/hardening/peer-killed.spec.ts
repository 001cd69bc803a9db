/**
 * Faults, peer killed (SIGKILL) mid-transfer, both ways round, with both peers in child processes
 * on the built library (spec/integration/peer-killed.spec.ts checks the starter's error and timing
 * from the jest process; this one adds what only a clean process can show):
 * - the survivor's connection ends with ConnectionTimeoutError after about
 *   pingInterval × (pingPacketCount + 1) of silence;
 * - it releases everything: no timer is left, and no socket beyond the listener's own;
 * - a surviving starter's process then exits by itself (nothing keeps its event loop alive), and so
 *   does a surviving listener's once it is unsubscribed.
 */
import { join } from 'node:path';
import { Child, FIXTURES, ensureBuilt } from './helpers';

jest.setTimeout(60_000);

const PING_INTERVAL = 200;
const PING_PACKET_COUNT = 3;
const OPTIONS = JSON.stringify({ pingInterval: PING_INTERVAL, pingPacketCount: PING_PACKET_COUNT });
const EXPECTED_SILENCE_MS = PING_INTERVAL * (PING_PACKET_COUNT + 1); // 800
const LINGER_MS = PING_INTERVAL * PING_PACKET_COUNT; // 600
const PEER = join(FIXTURES, 'peer.js');

const children: Child[] = [];
beforeAll(() => ensureBuilt(), 120_000);
afterEach(async () => {
  for (const c of children.splice(0)) {
    c.proc.stdin?.end();
    await c.kill();
  }
});

function start(args: string[]): Child {
  const c = new Child(PEER, args);
  children.push(c);
  return c;
}

/** Resolves with the exit code if the process ends within `ms`, else 'still running'. */
function exitWithin(c: Child, ms: number): Promise<number | string> {
  return Promise.race([c.exited, new Promise<string>((resolve) => setTimeout(() => resolve('still running'), ms).unref())]);
}

test('the listener is killed mid-transfer: the starter ends with ConnectionTimeoutError, holds nothing, and its process exits by itself', async () => {
  const listener = start(['listen', OPTIONS]);
  const { port } = (await listener.waitFor((l) => l.event === 'listening', 10_000, 'listening')) as { port: number };
  const starter = start(['connect', String(port), OPTIONS]);
  await starter.waitFor((l) => l.event === 'echo' && (l.count as number) >= 50, 10_000, 'echoes flowing');
  await listener.kill();
  const end = (await starter.waitFor((l) => l.event === 'ended', 10_000, 'the starter noticing')) as { error: string; silentMs: number; resources: string[] };
  const idle = (await starter.waitFor((l) => l.event === 'idle', 5000, 'idle')) as { resources: string[] };
  const exit = await exitWithin(starter, 3000);
  console.log(`starter survivor: ${end.error} after ${end.silentMs} ms of silence (expected ~${EXPECTED_SILENCE_MS}); resources then: ${JSON.stringify(end.resources)}, a turn later: ${JSON.stringify(idle.resources)}; exit: ${exit}`);
  expect(end.error).toMatch(/^ConnectionTimeoutError/);
  expect(end.silentMs).toBeGreaterThanOrEqual(0.75 * EXPECTED_SILENCE_MS);
  expect(end.silentMs).toBeLessThanOrEqual(2 * EXPECTED_SILENCE_MS);
  // A turn after the error no timer is left (the socket's close completes asynchronously) …
  expect(idle.resources.filter((r) => r !== 'UDPWrap')).toEqual([]);
  // … and nothing keeps the process alive: it exits by itself.
  expect(exit).toBe(0);
});

test('the starter is killed mid-transfer: the listener side ends with ConnectionTimeoutError, holds only its socket after the linger, and exits by itself once unsubscribed', async () => {
  const listener = start(['listen', OPTIONS]);
  const { port } = (await listener.waitFor((l) => l.event === 'listening', 10_000, 'listening')) as { port: number };
  const starter = start(['connect', String(port), OPTIONS]);
  await listener.waitFor((l) => l.event === 'echo' && (l.count as number) >= 50, 10_000, 'echoes flowing');
  await starter.kill();
  const end = (await listener.waitFor((l) => l.event === 'ended', 10_000, 'the listener noticing')) as { error: string; silentMs: number; resources: string[] };
  // After the linger period the closed connection is forgotten: only the listening socket remains.
  await new Promise((resolve) => setTimeout(resolve, LINGER_MS + 300));
  listener.proc.stdin!.write('resources\n');
  const afterLinger = (await listener.waitFor((l) => l.event === 'resources', 5000, 'resources')) as { resources: string[] };
  listener.proc.stdin!.end();
  const unsubscribed = (await listener.waitFor((l) => l.event === 'unsubscribed', 5000, 'unsubscribed')) as { resources: string[] };
  const exit = await exitWithin(listener, 3000);
  console.log(`listener survivor: ${end.error} after ${end.silentMs} ms of silence; resources then: ${JSON.stringify(end.resources)}, after the linger: ${JSON.stringify(afterLinger.resources)}; after unsubscribing: ${JSON.stringify(unsubscribed.resources)}; exit: ${exit}`);
  expect(end.error).toMatch(/^ConnectionTimeoutError/);
  expect(end.silentMs).toBeGreaterThanOrEqual(0.75 * EXPECTED_SILENCE_MS);
  expect(end.silentMs).toBeLessThanOrEqual(2 * EXPECTED_SILENCE_MS);
  // After the linger, while the listener still runs: its socket, and not a single timer.
  expect(afterLinger.resources).toEqual(['UDPWrap']);
  // Once unsubscribed nothing keeps the process alive: it exits by itself.
  expect(exit).toBe(0);
});
