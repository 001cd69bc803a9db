/**
 * Faults, peer killed (SIGKILL) mid-transfer, both ways round, with both peers in child processes
 * on the built library (spec/integration/peer-killed.spec.ts checks the starter's error and timing
 * from the jest process; this one adds what only a clean process can show):
 * - the survivor's connection ends with ConnectionTimeoutError, not before
 *   pingInterval × (pingPacketCount + 1) of silence (how soon after is marble-tests/heartbeat's
 *   business, in virtual time: a wall-clock upper bound here would measure the machine's load);
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
/** A generous deadline for what takes about a second: a loaded machine is slow, not wrong. */
const DEADLINE_MS = 20_000;
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
  const end = (await starter.waitFor((l) => l.event === 'ended', DEADLINE_MS, 'the starter noticing')) as { error: string; silentMs: number; resources: string[] };
  const idle = (await starter.waitFor((l) => l.event === 'idle', 5000, 'idle')) as { resources: string[] };
  const exit = await exitWithin(starter, DEADLINE_MS);
  expect(end.error).toMatch(/^ConnectionTimeoutError/);
  expect(end.silentMs).toBeGreaterThanOrEqual(0.75 * EXPECTED_SILENCE_MS);
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
  const end = (await listener.waitFor((l) => l.event === 'ended', DEADLINE_MS, 'the listener noticing')) as { error: string; silentMs: number; resources: string[] };
  // After the linger period (pingInterval × pingPacketCount) the closed connection is forgotten:
  // only the listening socket remains. Asked until it says so, to a generous deadline.
  let afterLinger: { resources: string[] } | undefined;
  for (const until = Date.now() + DEADLINE_MS; Date.now() < until; ) {
    const seen = listener.lines.length;
    listener.proc.stdin!.write('resources\n');
    afterLinger = (await listener.waitFor((l) => l.event === 'resources' && listener.lines.indexOf(l) >= seen, 5000, 'resources')) as { resources: string[] };
    if (afterLinger.resources.join() === 'UDPWrap') break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  listener.proc.stdin!.end();
  await listener.waitFor((l) => l.event === 'unsubscribed', 5000, 'unsubscribed');
  const exit = await exitWithin(listener, DEADLINE_MS);
  expect(end.error).toMatch(/^ConnectionTimeoutError/);
  expect(end.silentMs).toBeGreaterThanOrEqual(0.75 * EXPECTED_SILENCE_MS);
  // After the linger, while the listener still runs: its socket, and not a single timer.
  expect(afterLinger?.resources).toEqual(['UDPWrap']);
  // Once unsubscribed nothing keeps the process alive: it exits by itself.
  expect(exit).toBe(0);
});
