/**
 * Faults:
 * - socket errors (ECONNREFUSED from an ICMP port unreachable on some platforms, other socket
 *   failures, EMSGSIZE on send) are reported on the connection with a clear error, never as an
 *   uncaught exception (virtual network: failSocket, and its EMSGSIZE on oversize datagrams);
 * - seq and batch numbers wrap past 2^32 during a real-socket transfer with loss and reordering.
 * (SIGKILL of a peer: peer-killed.spec.ts here, and spec/integration/peer-killed.spec.ts.)
 */
import { lastValueFrom } from 'rxjs';
import { connectWithTestHooks } from '../../lib/api/connect';
import { listenWithTestHooks } from '../../lib/api/listen';
import { ConnectionClosedError, type CloseInfo, type Connection } from '../../lib/index';
import { udpSocketFactory } from '../../lib/node/udp-socket';
import { PacketType, type Packet } from '../../lib/wire/packet';
import { HOST, sleep, within } from '../integration/helpers';
import {
  LISTENER_HOST,
  STARTER_HOST,
  captureUnhandledErrors,
  digest,
  impaired,
  messages,
  spoofable,
  virtualPair,
  watched,
  world,
} from './helpers';

jest.setTimeout(60_000);

let unhandled: ReturnType<typeof captureUnhandledErrors>;
beforeEach(() => (unhandled = captureUnhandledErrors()));
afterEach(() => unhandled.restore());

function systemError(code: string): Error {
  return Object.assign(new Error(`recvmsg ${code}`), { code, syscall: 'recvmsg' });
}

function closedOf(conn: Connection): { info: CloseInfo | undefined } {
  const holder: { info: CloseInfo | undefined } = { info: undefined };
  conn.closed$.subscribe((info) => (holder.info = info));
  return holder;
}

describe('socket errors', () => {
  test("the starter's socket fails (ECONNREFUSED): its connection ends with ConnectionClosedError naming the cause", () => {
    const w = world();
    const starter = spoofable(w.network.socketFactory(STARTER_HOST));
    const pair = virtualPair(w, { connectFactory: starter.factory, toServer: messages(3, 1, 5000) });
    w.run(100);
    const closed = closedOf(pair.client.conn!);
    expect(w.network.failSocket(STARTER_HOST, starter.local().port, systemError('ECONNREFUSED'))).toBe(true);
    w.run(10);
    expect(pair.client.ended).toMatch(/^ConnectionClosedError: .*ECONNREFUSED/);
    expect(closed.info?.error?.message).toMatch(/ECONNREFUSED/);
    expect(pair.errors).toEqual([closed.info!.error]); // connect() errors with it: the connection ended abnormally
    expect(unhandled.errors).toEqual([]);
    w.run(60_000);
    expect(pair.server.ended).toMatch(/^ConnectionTimeoutError/); // the listener side notices through the pings
    expect(unhandled.errors).toEqual([]);
    expect(w.scheduler.actions.length).toBe(0);
    w.close();
  });

  test("the listener's socket fails: every connection ends with ConnectionClosedError naming the cause, listen() errors with it", () => {
    const w = world();
    const pair = virtualPair(w, { toServer: messages(3, 1, 5000) });
    w.run(100);
    expect(w.network.failSocket(LISTENER_HOST, 5000, systemError('ECONNREFUSED'))).toBe(true);
    w.run(10);
    expect(pair.server.ended).toMatch(/^ConnectionClosedError: .*ECONNREFUSED/);
    expect((pair.errors[0] as Error | undefined)?.message).toMatch(/ECONNREFUSED/);
    expect(unhandled.errors).toEqual([]);
    w.run(60_000);
    expect(pair.client.ended).toMatch(/^ConnectionTimeoutError/);
    expect(unhandled.errors).toEqual([]);
    w.close();
  });

  test('EMSGSIZE on every DATA datagram (a path smaller than maxDatagramSize): the connection reports it with a clear error instead of hanging', () => {
    // The network carries at most 1000-byte datagrams; both ends use the default maxDatagramSize 1200.
    const w = world({ maxDatagramSize: 1000 });
    const pair = virtualPair(w);
    w.run(100);
    const conn = pair.client.conn!;
    const closed = closedOf(conn);
    let sendResult = 'pending';
    conn.send(Buffer.alloc(5000, 7)).subscribe({ complete: () => (sendResult = 'acknowledged'), error: (e: Error) => (sendResult = `${e.name}: ${e.message}`) });
    w.run(60_000);
    expect(unhandled.errors).toEqual([]);
    // Reported on the connection: it ends, and the pending send() errors, both naming EMSGSIZE.
    expect(closed.info?.error?.message ?? `still open after 60 s, ${conn.stats.retransmissions} retransmissions, bufferedBytes ${conn.stats.bufferedBytes}`).toMatch(/EMSGSIZE/);
    expect(pair.client.ended).toMatch(/EMSGSIZE/);
    expect(sendResult).toMatch(/EMSGSIZE/);
    w.close();
  });

  // What the waiting send() errors with, and how messages$ ends: a normal close completes it, but
  // the unacknowledged message is still reported as not delivered, with the side that closed.
  const told = {
    'close()': { send: /^ConnectionClosedError: the connection was closed on this side \(reason 0\) before the message was acknowledged$/, ended: 'completed' },
    'the peer closes': { send: /^ConnectionClosedError: the connection was closed by the peer \(reason 0\) before the message was acknowledged$/, ended: 'completed' },
    'the socket fails': { send: /^ConnectionClosedError: socket failed: recvmsg ECONNREFUSED$/, ended: 'ConnectionClosedError: socket failed: recvmsg ECONNREFUSED' },
  } as const;
  for (const how of ['close()', 'the peer closes', 'the socket fails'] as const) {
    test(`a send() still waiting for its acknowledgement is told when the connection ends (${how}), with ConnectionClosedError`, () => {
      const w = world();
      w.network.setDefault({ delay: 50 });
      const starter = spoofable(w.network.socketFactory(STARTER_HOST));
      const pair = virtualPair(w, { connectFactory: starter.factory });
      w.run(200);
      const conn = pair.client.conn!;
      let result = 'pending';
      let error: unknown;
      conn.send(Buffer.alloc(50_000, 1)).subscribe({ complete: () => (result = 'acknowledged'), error: (e: Error) => ((error = e), (result = `${e.name}: ${e.message}`)) });
      w.run(10); // sent, not yet acknowledged (100 ms round trip)
      if (how === 'close()') conn.close();
      else if (how === 'the peer closes') pair.server.conn!.close();
      else w.network.failSocket(STARTER_HOST, starter.local().port, systemError('ECONNREFUSED'));
      w.run(1000);
      expect(pair.client.ended).toBe(told[how].ended);
      expect(result).toMatch(told[how].send);
      expect(error).toBeInstanceOf(ConnectionClosedError);
      expect(unhandled.errors).toEqual([]);
      w.close();
    });
  }

  test('a DIRECT datagram the network refuses (EMSGSIZE) is not an uncaught exception', () => {
    const w = world({ maxDatagramSize: 1000 });
    const pair = virtualPair(w);
    w.run(100);
    expect(pair.client.conn!.sendDirect(Buffer.alloc(1100))).toBe(true); // within maxDirectSize (1194), beyond the path
    w.run(100);
    expect(unhandled.errors).toEqual([]);
    expect(pair.server.direct).toEqual([]);
    w.close();
  });
});

describe('persistent loss', () => {
  test('a packet lost every time (datagrams over 1000 bytes black-holed, zero-delay link): no livelock, and REPEATs for it are spaced out', () => {
    // A path MTU black hole: big datagrams vanish without an error, small ones (the last packet of
    // a message, acks) pass. With no delay the RTT estimate is 0: re-asking "after one round trip"
    // must still not mean re-asking at the same instant forever.
    const w = world({ default: { drop: (d) => d.data.length > 1000 } });
    const pair = virtualPair(w);
    w.run(100);
    pair.client.conn!.send(Buffer.alloc(5000, 7)).subscribe({ error: () => undefined });
    let error: unknown;
    try {
      w.run(10_000);
    } catch (e) {
      error = e;
    }
    const repeats = pair.server.conn!.stats.repeatsSent;
    expect(error === undefined ? `virtual time reached ${w.scheduler.now()} ms` : String(error)).toBe('virtual time reached 10100 ms');
    // At most one REPEAT per min(10 ms, deliveryTimeout), the protocol's smallest timer.
    expect(repeats).toBeLessThanOrEqual(10_000 / 10);
    expect(unhandled.errors).toEqual([]);
    w.close();
  });
});

describe('sequence and batch numbers wrapping past 2^32', () => {
  test('a real-socket transfer both ways, with 5 % loss and reordering, starting 200 packets and 5 messages before the wrap', async () => {
    const INITIAL_SEQ = 2 ** 32 - 200;
    const INITIAL_BATCH = 2 ** 32 - 5;
    const hooks = { initialSeq: INITIAL_SEQ, initialBatch: INITIAL_BATCH };
    const seen = { seqs: new Set<number>(), batches: new Set<number>() };
    const record = (p: Packet): void => {
      if (p.type !== PacketType.Data) return;
      seen.seqs.add(p.seq);
      seen.batches.add(p.batch);
    };
    const factory = (seed: number) => watched(impaired(udpSocketFactory, { loss: 0.05, reorder: 0.03, delayMs: 3, seed }), record);
    // The first message of each side alone (300 KB, 254 packets) reaches the wrap.
    const toServer = [Buffer.alloc(300_000, 1), ...messages(39, 1, 60_000)];
    const toClient = [Buffer.alloc(300_000, 2), ...messages(39, 2, 60_000)];
    const got = { server: [] as string[], client: [] as string[] };
    let server: Connection | undefined;
    let client: Connection | undefined;
    let port = 0;
    const errors: unknown[] = [];
    const attach = (c: Connection, into: string[], out: Buffer[]) => {
      c.messages$.subscribe({ next: (m) => void into.push(digest(m)), error: (e) => void errors.push(e) });
      for (const m of out) c.send$.next(m);
    };
    const l = listenWithTestHooks({ host: HOST, port: 0, socketFactory: factory(1), onListening: (a) => (port = a.port) }, hooks).subscribe((c) => attach((server = c), got.server, toClient));
    try {
      while (port === 0) await sleep(1);
      const s = connectWithTestHooks({ host: HOST, port, socketFactory: factory(2) }, hooks).subscribe({ next: (c) => attach((client = c), got.client, toServer), error: (e) => void errors.push(e) });
      try {
        await within(
          (async () => {
            while (got.server.length < toServer.length || got.client.length < toClient.length) await sleep(10);
          })(),
          30_000,
          () => `all messages (server ${got.server.length}, client ${got.client.length}, errors ${errors.map(String)})`,
        );
        expect(errors).toEqual([]);
        expect(got.server).toEqual(toServer.map(digest));
        expect(got.client).toEqual(toClient.map(digest));
        // The numbers did wrap: seqs on both sides of 2^32, batches too, and losses were repaired across it.
        const seqs = [...seen.seqs];
        expect(seqs.some((q) => q >= INITIAL_SEQ)).toBe(true);
        expect(seqs.some((q) => q < 1000)).toBe(true);
        expect(seen.batches.has(2 ** 32 - 1)).toBe(true);
        expect(seen.batches.has(0)).toBe(true);
        expect(seen.batches.has(30)).toBe(true);
        expect(client!.stats.retransmissions + server!.stats.retransmissions).toBeGreaterThan(0);
        await within(lastValueFrom(client!.send(Buffer.from('last')), { defaultValue: undefined }), 5000, 'one more message acknowledged');
      } finally {
        s.unsubscribe();
      }
    } finally {
      l.unsubscribe();
    }
    expect(unhandled.errors).toEqual([]);
  });
});
