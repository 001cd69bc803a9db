/**
 * Secure connections end to end on the virtual network (virtual time): what a relay between the
 * peers sees, what a wrong key or a plain peer gets, what tampering and replay achieve (nothing),
 * and keys that rotate mid-transfer.
 */
import { VirtualAction, VirtualTimeScheduler, type Subscription } from 'rxjs';
import { ConnectionRefusedError, HandshakeError, generateKeyPair, type Connection, type EndpointStats } from '../../lib/index';
import { connectWithTestHooks, type ConnectOptions } from '../../lib/api/connect';
import { listenWithTestHooks, type ListenOptions } from '../../lib/api/listen';
import { VirtualNetwork } from '../../lib/testing/index';
import type { Datagram, DatagramSocket, SocketFactory } from '../../lib/core/transport';
import { map } from 'rxjs';
import { spoofable } from '../hardening/helpers';

const LISTENER = '10.0.0.2';
const STARTER = '10.0.0.1';
const PORT = 5000;

function world(seed = 1, impairment = {}) {
  const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
  const network = new VirtualNetwork({ scheduler, seed, default: { delay: 5, ...impairment } });
  const subscriptions: Subscription[] = [];
  return {
    scheduler,
    network,
    keep: (s: Subscription) => void subscriptions.push(s),
    run(ms: number) {
      scheduler.schedule(() => undefined, ms);
      scheduler.maxFrames = scheduler.now() + ms;
      scheduler.flush();
    },
    close: () => subscriptions.splice(0).reverse().forEach((s) => s.unsubscribe()),
  };
}
type World = ReturnType<typeof world>;

/** Messages each holding a marker no datagram may show in the clear. */
function messages(count: number, size: number, tag: string): Buffer[] {
  return Array.from({ length: count }, (_, i) => {
    const m = Buffer.alloc(size, `${tag}-secret-${i}|`);
    m.writeUInt32BE(i, 0);
    return m;
  });
}

interface Side {
  conn: Connection | undefined;
  received: string[];
  direct: string[];
  error: Error | undefined;
}

function pair(
  w: World,
  listenOptions: Omit<ListenOptions, 'host' | 'port' | 'scheduler' | 'socketFactory'>,
  connectOptions: Omit<ConnectOptions, 'host' | 'port' | 'scheduler' | 'socketFactory'>,
  traffic: { toServer?: Buffer[]; toClient?: Buffer[]; factory?: (f: SocketFactory) => SocketFactory; listenFactory?: (f: SocketFactory) => SocketFactory; rekeyInterval?: number } = {},
) {
  const side = (): Side => ({ conn: undefined, received: [], direct: [], error: undefined });
  const server = side();
  const client = side();
  let stats: EndpointStats | undefined;
  const attach = (s: Side, c: Connection, outgoing: Buffer[] = []): void => {
    s.conn = c;
    c.messages$.subscribe({ next: (m) => void s.received.push(Buffer.from(m).toString('latin1')), error: (e: Error) => void (s.error = e) });
    c.direct$.subscribe((d) => void s.direct.push(Buffer.from(d).toString()));
    for (const m of outgoing) c.send$.next(m);
  };
  const wrap = traffic.factory ?? ((f: SocketFactory) => f);
  const hooks = traffic.rekeyInterval === undefined ? {} : { rekeyInterval: traffic.rekeyInterval };
  w.keep(
    listenWithTestHooks(
      { ...listenOptions, host: LISTENER, port: PORT, scheduler: w.scheduler, socketFactory: (traffic.listenFactory ?? wrap)(w.network.socketFactory(LISTENER)), onListening: (_, s) => void (stats = s) },
      hooks,
    ).subscribe({ next: (c) => attach(server, c, traffic.toClient), error: (e: Error) => void (server.error = e) }),
  );
  w.keep(
    connectWithTestHooks({ ...connectOptions, host: LISTENER, port: PORT, scheduler: w.scheduler, socketFactory: wrap(w.network.socketFactory(STARTER)) }, hooks).subscribe({
      next: (c) => attach(client, c, traffic.toServer),
      error: (e: Error) => void (client.error = e),
    }),
  );
  return { server, client, stats: () => stats! };
}

const text = (ms: Buffer[]): string[] => ms.map((m) => m.toString('latin1'));

test('a relay between the peers sees no plaintext of any message, and both ways arrive intact', () => {
  const w = world();
  const keys = generateKeyPair();
  const wire: Buffer[] = [];
  w.keep(w.network.traffic$.subscribe((e) => void wire.push(Buffer.from(e.data))));
  const toServer = messages(20, 3000, 'up');
  const toClient = messages(20, 700, 'down');
  const p = pair(w, { secure: { privateKey: keys.privateKey } }, { secure: { serverPublicKey: keys.publicKey } }, { toServer, toClient });
  w.run(2000);
  expect(p.client.error).toBeUndefined();
  p.client.conn!.sendDirect(Buffer.from('direct-secret'));
  w.run(100);
  expect(p.server.received).toEqual(text(toServer));
  expect(p.client.received).toEqual(text(toClient));
  expect(p.server.direct).toEqual(['direct-secret']);
  expect(wire.length).toBeGreaterThan(40);
  const all = Buffer.concat(wire).toString('latin1');
  expect(all).not.toMatch(/secret/);
  // Every datagram after the handshake is SEALED (type 0x18): not even packet types show.
  const types = new Set(wire.map((d) => d[1]));
  expect([...types].sort()).toEqual([0x01, 0x02, 0x18]);
  w.close();
});

test('a wrong server key fails the handshake with HandshakeError saying so', () => {
  const w = world();
  const keys = generateKeyPair();
  const other = generateKeyPair();
  const p = pair(w, { secure: { privateKey: keys.privateKey } }, { secure: { serverPublicKey: other.publicKey } });
  w.run(3000);
  expect(p.client.error).toBeInstanceOf(HandshakeError);
  expect(p.client.error!.message).toMatch(/serverPublicKey/);
  expect(p.server.conn).toBeUndefined();
  expect(p.stats().handshakeFailures).toBeGreaterThan(0);
  w.close();
});

test('a plain starter is refused by a listener that requires encryption, and told why', () => {
  const w = world();
  const keys = generateKeyPair();
  const p = pair(w, { secure: { privateKey: keys.privateKey } }, {});
  w.run(3000);
  expect(p.client.error).toBeInstanceOf(ConnectionRefusedError);
  expect(p.client.error!.message).toMatch(/encryption required/);
  expect(p.server.conn).toBeUndefined();
  w.close();
});

test('a secure starter never falls back to a plain listener', () => {
  const w = world();
  const keys = generateKeyPair();
  const p = pair(w, {}, { secure: { serverPublicKey: keys.publicKey } }, { toServer: messages(1, 10, 'x') });
  w.run(3000);
  expect(p.client.error).toBeInstanceOf(HandshakeError);
  expect(p.client.error!.message).toMatch(/without encryption/);
  expect(p.server.received).toEqual([]);
  w.close();
});

test('a listener with required: false serves plain and secure starters alike', () => {
  const keys = generateKeyPair();
  for (const connectOptions of [{}, { secure: { serverPublicKey: keys.publicKey } }]) {
    const w = world();
    const toServer = messages(3, 100, 'm');
    const p = pair(w, { secure: { privateKey: keys.privateKey, required: false } }, connectOptions, { toServer });
    w.run(2000);
    expect(p.client.error).toBeUndefined();
    expect(p.server.received).toEqual(text(toServer));
    w.close();
  }
});

/** Flips one random byte of a datagram with probability `rate`, in both directions. */
function tampering(rate: number, seed: number, flipped: { count: number }): (f: SocketFactory) => SocketFactory {
  let state = seed;
  const random = (): number => ((state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32);
  return (factory) => (options) =>
    factory(options).pipe(
      map(
        (socket): DatagramSocket => ({
          datagrams$: socket.datagrams$.pipe(
            map((d): Datagram => {
              if (random() >= rate) return d;
              const data = Buffer.from(d.data);
              data[Math.floor(random() * data.length)]! ^= 1 << Math.floor(random() * 8);
              flipped.count++;
              return { ...d, data };
            }),
          ),
          send: (data, port, address, onError) => socket.send(data, port, address, onError),
          address: () => socket.address(),
        }),
      ),
    );
}

test('flipping a bit anywhere in any datagram gets it dropped: the transfer still completes, intact', () => {
  for (const seed of [1, 2, 3, 4]) {
    const w = world(seed);
    const keys = generateKeyPair();
    const flipped = { count: 0 };
    const toServer = messages(60, 2500, 'up');
    const toClient = messages(30, 100, 'down');
    const p = pair(w, { secure: { privateKey: keys.privateKey } }, { secure: { serverPublicKey: keys.publicKey } }, { toServer, toClient, factory: tampering(0.1, seed, flipped) });
    w.run(20_000);
    expect(p.client.error).toBeUndefined();
    expect(p.server.error).toBeUndefined();
    expect(p.server.received).toEqual(text(toServer));
    expect(p.client.received).toEqual(text(toClient));
    expect(flipped.count).toBeGreaterThan(10);
    expect(p.stats().unauthenticatedDatagrams).toBeGreaterThan(0);
    w.close();
  }
});

test('replaying captured datagrams delivers nothing twice', () => {
  const w = world();
  const keys = generateKeyPair();
  const captured: { data: Buffer; address: string; port: number }[] = [];
  w.keep(w.network.traffic$.subscribe((e) => void (e.to.port === PORT && captured.push({ data: Buffer.from(e.data), address: e.from.address, port: e.from.port }))));
  let spoof: ReturnType<typeof spoofable> | undefined;
  const toServer = messages(10, 2000, 'up');
  const p = pair(w, { secure: { privateKey: keys.privateKey } }, { secure: { serverPublicKey: keys.publicKey } }, {
    toServer,
    listenFactory: (f) => (spoof = spoofable(f)).factory,
  });
  w.run(1000);
  for (let i = 0; i < 5; i++) p.client.conn!.sendDirect(Buffer.from(`d${i}`));
  w.run(500);
  expect(p.server.received).toEqual(text(toServer));
  expect(p.server.direct).toEqual(['d0', 'd1', 'd2', 'd3', 'd4']);
  const before = p.stats().unauthenticatedDatagrams;
  // An attacker on the path replays every datagram the starter sent, from its address, twice.
  const replayed = captured.slice();
  for (let round = 0; round < 2; round++) for (const c of replayed) spoof!.inject(c.data, c.address, c.port);
  w.run(1000);
  expect(p.server.received).toEqual(text(toServer));
  expect(p.server.direct).toEqual(['d0', 'd1', 'd2', 'd3', 'd4']);
  expect(p.stats().unauthenticatedDatagrams - before).toBeGreaterThanOrEqual(2 * replayed.filter((c) => c.data[1] === 0x18).length);
  expect(p.client.error).toBeUndefined();
  w.close();
});

test('keys rotate during a transfer: every message arrives, in order, under loss and reordering', () => {
  const w = world(7, { loss: 0.05, reorder: 0.1, jitter: 3 });
  const keys = generateKeyPair();
  const toServer = messages(200, 1500, 'up');
  const p = pair(w, { secure: { privateKey: keys.privateKey } }, { secure: { serverPublicKey: keys.publicKey } }, { toServer, rekeyInterval: 32 });
  w.run(30_000);
  expect(p.client.error).toBeUndefined();
  expect(p.server.received).toEqual(text(toServer));
  // 200 × 2 packets and their acks: many rotations.
  expect(p.client.conn!.stats.packetsSent / 32).toBeGreaterThan(10);
  w.close();
});
