/**
 * Hostile peers and memory (virtual network, virtual time, heap measured after full GCs):
 * - a peer that advertises window 0 forever, or never acknowledges, cannot grow the sender's
 *   memory beyond maxBufferedBytes (the application's further sends are refused);
 * - a peer that sends a batch's packets but never the last one cannot grow the receiver's memory
 *   beyond receiveWindow packets and maxMessageSize bytes, however long it keeps going;
 * - nor can one that declares small datagrams and then sends big payloads.
 * The hostile peer is a raw socket speaking packets; the victim is the library's listener side.
 */
import { SendBufferFullError } from '../../lib/index';
import type { Connection } from '../../lib/core/connection';
import { PacketType, type Packet } from '../../lib/wire/packet';
import { listen } from '../../lib/index';
import { LISTENER_HOST, LISTENER_PORT, MiB, captureUnhandledErrors, connectPacket, gc, rawPeer, world, type World } from './helpers';

jest.setTimeout(60_000);

const ID = 0x4a4a4a4a;
const MAX_BUFFERED = 1 * MiB;
const MAX_MESSAGE = 1 * MiB;
const RECEIVE_WINDOW = 64;

/** heapUsed + arrayBuffers after full garbage collections. */
function memory(): number {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

function victim(w: World) {
  const state: { conn: Connection | undefined; ended: string | undefined; maxBuffered: number } = { conn: undefined, ended: undefined, maxBuffered: 0 };
  w.keep(
    listen({
      host: LISTENER_HOST,
      port: LISTENER_PORT,
      scheduler: w.scheduler,
      socketFactory: w.network.socketFactory(LISTENER_HOST),
      maxBufferedBytes: MAX_BUFFERED,
      maxMessageSize: MAX_MESSAGE,
      receiveWindow: RECEIVE_WINDOW,
    }).subscribe((c) => {
      state.conn = c;
      c.messages$.subscribe({ error: (e: Error) => void (state.ended = e.name), complete: () => void (state.ended = 'completed') });
      c.bufferedBytes$.subscribe((b) => void (state.maxBuffered = Math.max(state.maxBuffered, b)));
    }),
  );
  return state;
}

/** The hostile peer: connects (declaring `receiveWindow` and `maxDatagramSize`), then pings every 500 ms to stay alive. */
function hostile(w: World, receiveWindow: number, maxDatagramSize = 1200) {
  const peer = rawPeer(w, '10.0.0.1', 0, { record: false }); // (recording the answers would be the test's own growth)
  const connect = connectPacket(ID);
  connect.writeUInt16BE(maxDatagramSize, 6);
  connect.writeUInt16BE(receiveWindow, 8);
  peer.send(connect, LISTENER_PORT, LISTENER_HOST);
  let nonce = 0;
  const keepAlive = w.keep(
    w.scheduler.schedule(function (this: { schedule(state?: unknown, delay?: number): void }) {
      peer.send({ type: PacketType.Ping, connectionId: ID, nonce: ++nonce }, LISTENER_PORT, LISTENER_HOST);
      this.schedule(undefined, 500);
    }, 500),
  );
  return { peer, send: (p: Packet | Uint8Array) => peer.send(p, LISTENER_PORT, LISTENER_HOST), stop: () => keepAlive.unsubscribe() };
}

/** The application: tries to send a fresh 64 KiB message every 20 ms for `ms`, with send(); counts refusals. */
function producer(w: World, conn: Connection, ms: number) {
  const result = { attempted: 0, refused: 0, otherErrors: [] as string[] };
  for (let t = 0; t < ms; t += 20) {
    w.run(20);
    result.attempted++;
    conn.send(Buffer.alloc(64 * 1024, result.attempted & 0xff)).subscribe({
      error: (e: Error) => {
        if (e instanceof SendBufferFullError) result.refused++;
        else result.otherErrors.push(e.name);
      },
    });
  }
  return result;
}

test('a peer advertising window 0 forever cannot grow the sender beyond maxBufferedBytes', () => {
  const unhandled = captureUnhandledErrors();
  const w = world();
  const v = victim(w);
  const h = hostile(w, 1);
  // Every DATA (the zero-window probes) is answered: nothing received, window 0.
  w.keep(
    w.network.traffic$.subscribe((e) => {
      if (e.from.port === LISTENER_PORT && e.data[1] === PacketType.Data) {
        w.scheduler.schedule(() => h.send({ type: PacketType.DataAck, connectionId: ID, cumulative: 0, window: 0, ranges: [] }), 1);
      }
    }),
  );
  w.run(10);
  const conn = v.conn!;
  w.run(100);
  const before = memory();
  const sent = producer(w, conn, 60_000); // 3,000 × 64 KiB = 187.5 MiB offered over a virtual minute
  w.run(60_000);
  const growth = memory() - before;
  expect(v.ended).toBeUndefined();
  expect(sent.otherErrors).toEqual([]);
  expect(v.maxBuffered).toBeLessThanOrEqual(MAX_BUFFERED);
  expect(sent.refused).toBeGreaterThanOrEqual(sent.attempted - MAX_BUFFERED / (64 * 1024));
  expect(conn.stats.inFlight).toBeLessThanOrEqual(1);
  expect(growth).toBeLessThan(MAX_BUFFERED + 2 * MiB);
  expect(unhandled.errors).toEqual([]);
  unhandled.restore();
  h.stop();
  w.close();
});

test('a peer that never acknowledges cannot grow the sender beyond maxBufferedBytes', () => {
  const unhandled = captureUnhandledErrors();
  const w = world();
  const v = victim(w);
  const h = hostile(w, 65535);
  w.run(10);
  const conn = v.conn!;
  w.run(100);
  const before = memory();
  const sent = producer(w, conn, 60_000);
  w.run(60_000);
  const growth = memory() - before;
  expect(v.ended).toBeUndefined();
  expect(sent.otherErrors).toEqual([]);
  expect(v.maxBuffered).toBeLessThanOrEqual(MAX_BUFFERED);
  expect(sent.refused).toBeGreaterThanOrEqual(sent.attempted - MAX_BUFFERED / (64 * 1024));
  expect(growth).toBeLessThan(MAX_BUFFERED + 2 * MiB);
  expect(unhandled.errors).toEqual([]);
  unhandled.restore();
  h.stop();
  w.close();
});

const data = (seq: number, batch: number, index: number, count: number, payload: Uint8Array): Packet => ({ type: PacketType.Data, connectionId: ID, seq, batch, index, count, payload });

test('a peer that sends a batch but never its last packet cannot grow the receiver beyond receiveWindow and maxMessageSize', () => {
  const unhandled = captureUnhandledErrors();
  const w = world();
  const v = victim(w);
  const h = hostile(w, 1024);
  w.run(10);
  const conn = v.conn!;
  const before = memory();
  // Batch 0 of 887 packets (887 × 1182 bytes fits maxMessageSize 1 MiB): all but the last, in order.
  const COUNT = Math.floor(MAX_MESSAGE / 1182);
  for (let i = 0; i < COUNT - 1; i++) {
    h.send(data(i, 0, i, COUNT, Buffer.alloc(1182, i)));
    if (i % 32 === 31) w.run(1);
  }
  w.run(10);
  // Then, for 30 virtual seconds: every other seq inside the receive window beyond the gap, every
  // other seq ever further beyond it (each a new block, if it were taken), fresh bytes each time,
  // and retransmissions of the batch's packets.
  let offered = COUNT - 1;
  const gap = COUNT - 1;
  let far = gap + RECEIVE_WINDOW;
  for (let round = 0; round < 300; round++) {
    for (let k = 1; k < RECEIVE_WINDOW; k += 2) {
      h.send(data(gap + k, 1, 0, 1, Buffer.alloc(1182, round)));
      offered++;
    }
    for (let k = 0; k < 200; k++, far += 2) {
      h.send(data(far, 1, 0, 1, Buffer.alloc(1182, round)));
      offered++;
    }
    for (let k = 0; k < 20; k++) {
      const i = (round * 20 + k) % (COUNT - 1);
      h.send(data(i, 0, i, COUNT, Buffer.alloc(1182, i)));
      offered++;
    }
    w.run(100);
  }
  const growth = memory() - before;
  const bound = MAX_MESSAGE + RECEIVE_WINDOW * 1200;
  expect(v.ended).toBeUndefined(); // not a violation: the peer may yet send the last packet
  expect(conn.stats.messagesReceived).toBe(0);
  expect(growth).toBeLessThan(bound + 2 * MiB);
  expect(unhandled.errors).toEqual([]);
  unhandled.restore();
  h.stop();
  w.close();
});

test('a peer that declares 576-byte datagrams and sends 1182-byte payloads is closed before a batch exceeds maxMessageSize', () => {
  const unhandled = captureUnhandledErrors();
  const w = world();
  const v = victim(w);
  const h = hostile(w, 1024, 576);
  w.run(10);
  const before = memory();
  // Payload per packet should be 576 - 18 = 558; the count claims a message under 1 MiB at that size.
  const COUNT = Math.floor(MAX_MESSAGE / 558);
  for (let i = 0; i < COUNT - 1; i++) {
    h.send(data(i, 0, i, COUNT, Buffer.alloc(1182, i)));
    if (i % 32 === 31) w.run(1);
  }
  w.run(100);
  const growth = memory() - before;
  expect(['MessageTooLargeError', 'ProtocolError']).toContain(v.ended);
  expect(growth).toBeLessThan(MAX_MESSAGE + RECEIVE_WINDOW * 1200 + 2 * MiB);
  expect(unhandled.errors).toEqual([]);
  unhandled.restore();
  h.stop();
  w.close();
});
