/**
 * A peer that dies without a word (SIGKILL, mid-transfer): the surviving side must notice through
 * the keep-alive, once pingInterval × (pingPacketCount + 1) passed without a word.
 *
 * The peer is a child Node process running spec/fixtures/echo-listener.js on the built library
 * (dist/), built here only when it is missing or older than lib/ (`npm test` has just built it).
 */
import { ConnectionTimeoutError } from '../../lib/index';
import { ensureBuilt } from '../hardening/helpers';
import { EchoChild } from './echo-child';
import { connectClient, describeEnd, useResources, within } from './helpers';

jest.setTimeout(30_000);

const resources = useResources();

const PING_INTERVAL = 200;
const PING_PACKET_COUNT = 3;
const EXPECTED_SILENCE_MS = PING_INTERVAL * (PING_PACKET_COUNT + 1); // 800

beforeAll(() => ensureBuilt(), 120_000);

const child = new EchoChild();
afterEach(() => child.stop());

test('SIGKILL of the peer mid-transfer: messages$ errors with ConnectionTimeoutError after ~pingInterval × (pingPacketCount + 1)', async () => {
  const { port, pid } = await child.start(PING_INTERVAL);
  let echoed = 0;
  const client = await connectClient(
    resources,
    port,
    { pingInterval: PING_INTERVAL, pingPacketCount: PING_PACKET_COUNT },
    { keep: true, onMessage: () => void echoed++ },
  );

  // One exchange first: the peer is alive and echoing.
  client.conn.send$.next(Buffer.from('hello'));
  await client.inbox.waitFor(1, 5000, 'first echo');
  expect(Buffer.from(client.inbox.messages[0]!).toString()).toBe('hello');

  // A stream: far more than can cross before the kill (400 × 64 KiB), so data is in flight.
  for (let i = 0; i < 400; i++) client.conn.send$.next(Buffer.alloc(64 * 1024, i));
  await client.inbox.waitFor(4, 10_000, 'a few echoes of the stream');
  expect(client.conn.stats.bufferedBytes).toBeGreaterThan(0);
  expect(client.inbox.ended).toBeUndefined();

  const killedAt = performance.now();
  process.kill(pid, 'SIGKILL');
  // A generous deadline: how soon exactly is pinned in virtual time by marble-tests/heartbeat.
  const end = await within(client.inbox.end, 20_000, 'messages$ erroring after the peer was killed');
  const elapsed = performance.now() - killedAt;
  await child.exited;

  expect(describeEnd(end)).toMatch(/^error ConnectionTimeoutError/);
  expect(end.kind === 'error' && end.error).toBeInstanceOf(ConnectionTimeoutError);
  // It waited for the pings to go unanswered (a loaded machine only makes it later, so no upper bound).
  expect(elapsed).toBeGreaterThanOrEqual(0.5 * EXPECTED_SILENCE_MS);
  expect(echoed).toBeLessThan(401);
  expect(client.conn.stats.pingsSent).toBeGreaterThanOrEqual(1);
});
