/**
 * A process that is busy for a while (a GC pause, a long synchronous task) while its peer keeps
 * answering: when it resumes, the answers wait in its socket, and Node runs due timers before it
 * reads sockets. Decisions that the waiting input makes moot must wait for it: no resend of a
 * packet whose ack is there, no "peer dead" when its PINGs are there.
 *
 * The peer is a child process (spec/integration/echo-child.ts), so it answers while this one spins.
 */
import { ensureBuilt } from '../hardening/helpers';
import { EchoChild } from './echo-child';
import { connectClient, sleep, useResources } from './helpers';

jest.setTimeout(30_000);

const resources = useResources();

beforeAll(() => ensureBuilt(), 120_000);

const child = new EchoChild();
afterEach(() => child.stop());

/**
 * Keeps this process busy for `ms` outside the timers phase (as a message handler or a GC pause
 * would): nothing it receives is read meanwhile, and when it is done, the event loop's next step
 * is to run the timers that came due.
 */
function busy(ms: number): Promise<void> {
  return new Promise((resolve) =>
    setImmediate(() => {
      const until = performance.now() + ms;
      while (performance.now() < until);
      resolve();
    }),
  );
}

test('a packet whose ack arrived while this process was busy is not resent when it resumes', async () => {
  const { port } = await child.start(1000);
  const client = await connectClient(resources, port, {}, { keep: false });
  // A few exchanges first, for an RTT estimate (loopback: the RTO is near its 10 ms floor).
  for (let i = 0; i < 10; i++) {
    client.conn.send$.next(Buffer.alloc(100, i));
    await client.inbox.waitFor(i + 1, 5000, `echo ${i}`);
  }
  const before = client.conn.stats.retransmissions;
  // Busy for 3 × the RTO each time: every packet's timeout passes while its ack waits unread.
  const busyFor = Math.max(30, 3 * client.conn.stats.rto);
  const STALLS = 20;
  for (let i = 0; i < STALLS; i++) {
    client.conn.send$.next(Buffer.alloc(100, i));
    await busy(busyFor);
    await sleep(20);
  }
  await client.inbox.waitFor(10 + STALLS, 5000, 'every echo');
  // Before: every one of the 20 was resent. A peer descheduled that long on a loaded machine may still cost one or two.
  expect(client.conn.stats.retransmissions - before).toBeLessThanOrEqual(2);
});

test('a peer whose PINGs arrived while this process was busy past its ping timeout is not declared dead', async () => {
  // The child pings after 100 ms of silence; this side gives up after (2 + 1) × 100 ms without a word.
  const { port } = await child.start(100);
  const client = await connectClient(resources, port, { pingInterval: 100, pingPacketCount: 2 }, { keep: false });
  client.conn.send$.next(Buffer.from('hello'));
  await client.inbox.waitFor(1, 5000, 'first echo');
  await busy(450); // the child's PINGs (at 100, 200, 300 and 400 ms of silence) wait in the socket
  await sleep(100);
  client.conn.send$.next(Buffer.from('still there'));
  await client.inbox.waitFor(2, 5000, 'the echo after the busy spell');
  expect(client.inbox.ended).toBeUndefined();
});
