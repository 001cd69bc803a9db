/**
 * No PING resonance: a connection whose application traffic comes about once per pingInterval (a
 * message a second at the default 1 s) must not also PING whenever the next message is a little
 * late. Virtual time.
 */
import { TestScheduler } from 'rxjs/testing';
import { ConnectionCore } from '../../lib/core/connection';
import { ConnectionTimeoutError } from '../../lib/core/errors';
import { resolveProtocolOptions, type ProtocolOptions } from '../../lib/core/options';
import { heartbeat } from '../../lib/core/pipelines/heartbeat';
import { encode } from '../../lib/wire/codec';
import { PacketType, type Packet } from '../../lib/wire/packet';

const ID = 7;

function testScheduler(): TestScheduler {
  const ts = new TestScheduler((a, b) => expect(a).toEqual(b));
  ts.maxFrames = 60_000; // outside run(), flush() stops at 750 frames by default
  return ts;
}

test('heartbeat: data in the interval before the silence skips the 1× PING; 2× on and the timeout stay', () => {
  const ts = testScheduler();
  ts.run(({ hot, expectObservable }) => {
    const out$ = hot('').pipe(heartbeat({ pingInterval: 100, pingPacketCount: 3, scheduler: ts, lastDataAt: () => 0 }));
    expectObservable(out$).toBe('200ms b 99ms c 99ms #', { b: 2, c: 3 }, new ConnectionTimeoutError(400));
  });
});

test('heartbeat: without recent data, or with pingPacketCount 1, the 1× PING goes', () => {
  const ts = testScheduler();
  ts.run(({ hot, expectObservable }) => {
    const stale$ = hot('').pipe(heartbeat({ pingInterval: 100, pingPacketCount: 2, scheduler: ts, lastDataAt: () => -Infinity }));
    expectObservable(stale$).toBe('100ms a 99ms b 99ms #', { a: 1, b: 2 }, new ConnectionTimeoutError(300));
    const single$ = hot('').pipe(heartbeat({ pingInterval: 100, pingPacketCount: 1, scheduler: ts, lastDataAt: () => 0 }));
    expectObservable(single$).toBe('100ms a 99ms #', { a: 1 }, new ConnectionTimeoutError(200));
  });
});

/** A connection on `ts`; returns the types it sent, with their times. */
function connection(ts: TestScheduler, options: ProtocolOptions): { core: ConnectionCore; sent: { at: number; type: number }[] } {
  const sent: { at: number; type: number }[] = [];
  const core = new ConnectionCore({
    id: ID,
    remote: { address: '10.0.0.2', port: 4000 },
    options: resolveProtocolOptions(options),
    scheduler: ts,
    peerMaxDatagramSize: 1200,
    peerReceiveWindow: 1024,
    transmit: (packet) => {
      sent.push({ at: ts.now(), type: packet.type });
      return encode(packet).length;
    },
  });
  return { core, sent };
}

const data = (seq: number): Packet => ({ type: PacketType.Data, connectionId: ID, seq, batch: seq, index: 0, count: 1, payload: new Uint8Array(100) });

test('a connection receiving a message every second, each arriving 10 ms later than the last interval, never PINGs', () => {
  const ts = testScheduler();
  const { core, sent } = connection(ts, { pingInterval: 1000, pingPacketCount: 5 });
  core.messages$.subscribe();
  for (let i = 0; i < 10; i++) ts.schedule(() => core.ingest(data(i), 118), i * 1010);
  ts.schedule(() => core.close(), 10_000);
  ts.flush();
  expect(sent.filter((s) => s.type === PacketType.Ping)).toEqual([]);
  expect(sent.filter((s) => s.type === PacketType.DataAck).length).toBe(10);
});

test('a connection sending a message every second, each acknowledged at once but sent 10 ms later than the last interval, never PINGs', () => {
  const ts = testScheduler();
  const { core, sent } = connection(ts, { pingInterval: 1000, pingPacketCount: 5 });
  for (let i = 0; i < 10; i++) {
    ts.schedule(() => core.send$.next(new Uint8Array(100)), i * 1010);
    // The peer's DATA_ACK 1 ms after each message.
    ts.schedule(() => core.ingest({ type: PacketType.DataAck, connectionId: ID, cumulative: i + 1, window: 1024, ranges: [] }, 13), i * 1010 + 1);
  }
  ts.schedule(() => core.close(), 10_000);
  ts.flush();
  expect(sent.filter((s) => s.type === PacketType.Data).length).toBe(10);
  expect(sent.filter((s) => s.type === PacketType.Ping)).toEqual([]);
});

test('once the traffic stops, the connection PINGs from 2× pingInterval and times out at (count + 1)×, as before', () => {
  const ts = testScheduler();
  const { core, sent } = connection(ts, { pingInterval: 1000, pingPacketCount: 5 });
  let closedAt = -1;
  core.messages$.subscribe({ error: () => (closedAt = ts.now()) });
  ts.schedule(() => core.ingest(data(0), 118), 0);
  ts.flush();
  expect(sent.filter((s) => s.type === PacketType.Ping).map((s) => s.at)).toEqual([2000, 3000, 4000, 5000]);
  expect(closedAt).toBe(6000);
});

test('an idle connection (no data either way) still PINGs at 1× pingInterval', () => {
  const ts = testScheduler();
  const { sent } = connection(ts, { pingInterval: 1000, pingPacketCount: 2 });
  ts.flush();
  expect(sent.filter((s) => s.type === PacketType.Ping).map((s) => s.at)).toEqual([1000, 2000]);
});
