/**
 * Who may connect, and what a flood costs: `authorize` (sync, Promise, Observable, throwing) with
 * and without encryption, and 100,000 spoofed secure CONNECTs against a listener in retry mode,
 * which answers each with a RETRY no larger than the CONNECT and keeps nothing: no connection,
 * a flat heap, and an honest starter still connects. Virtual network, virtual time.
 */
import { of, timer, map, type Observable } from 'rxjs';
import { ConnectionRefusedError, generateKeyPair, type ConnectAttempt, type Connection, type EndpointStats } from '../../lib/index';
import { connect, listen } from '../../lib/testing/index';
import { encode } from '../../lib/wire/codec';
import { PacketType } from '../../lib/wire/packet';
import { encodeOffer, PATTERN_NK, RETRY_SIZE, SECURE_EXTENSION_ID } from '../../lib/wire/secure';
import { listen as listenOverUdp } from '../../lib/api/listen';
import { NkInitiator } from '../../lib/core/secure/noise-nk';
import { publicKeyFrom } from '../../lib/core/secure/keys';
import { LISTENER_HOST, LISTENER_PORT, MiB, STARTER_HOST, gc, spoofable, world, type World } from '../hardening/helpers';

const FLOOD = 100_000;

jest.setTimeout(120_000);

type Verdict = boolean | Promise<boolean> | Observable<boolean>;

function attempt(w: World, from: string, authorize: (a: ConnectAttempt) => Verdict, secure: boolean) {
  const keys = generateKeyPair();
  const seen: ConnectAttempt[] = [];
  const accepted: Connection[] = [];
  let stats: EndpointStats | undefined;
  w.keep(
    listen(w.network, {
      host: LISTENER_HOST,
      port: LISTENER_PORT,
      ...(secure ? { secure: { privateKey: keys.privateKey } } : {}),
      authorize: (a) => {
        seen.push(a);
        return authorize(a);
      },
      onListening: (_, s) => void (stats = s),
    }).subscribe((c) => void accepted.push(c)),
  );
  const result: { conn: Connection | undefined; error: Error | undefined } = { conn: undefined, error: undefined };
  w.keep(
    connect(w.network, { from, host: LISTENER_HOST, port: LISTENER_PORT, ...(secure ? { secure: { serverPublicKey: keys.publicKey } } : {}) }).subscribe({
      next: (c) => void (result.conn = c),
      error: (e: Error) => void (result.error = e),
    }),
  );
  w.run(3000);
  return { result, seen, accepted, keys, stats: () => stats! };
}

describe.each([false, true])('authorize (secure: %s)', (secure) => {
  test('true accepts, and is told the address, port and whether the handshake was secure', () => {
    const w = world();
    const a = attempt(w, '10.0.0.1', () => true, secure);
    expect(a.result.error).toBeUndefined();
    expect(a.result.conn).toBeDefined();
    expect(a.seen).toHaveLength(1);
    expect(a.seen[0]).toMatchObject({ address: '10.0.0.1', secure });
    expect(a.seen[0]!.port).toBeGreaterThan(0);
    w.close();
  });

  test('false refuses with ConnectionRefusedError "not authorized", and nothing is kept', () => {
    const w = world();
    const a = attempt(w, '10.0.0.1', (x) => x.address !== '10.0.0.1', secure);
    expect(a.result.error).toBeInstanceOf(ConnectionRefusedError);
    expect(a.result.error!.message).toMatch(/not authorized/);
    expect(a.accepted).toHaveLength(0);
    expect(a.stats().refusedConnections).toBeGreaterThan(0);
    w.close();
  });

  test('an Observable (or a Promise) may answer later; the CONNECTs resent meanwhile ask nothing again', async () => {
    const w = world();
    const a = attempt(w, '10.0.0.1', () => timer(700, w.scheduler).pipe(map(() => true)), secure);
    expect(a.result.error).toBeUndefined();
    expect(a.result.conn).toBeDefined();
    expect(a.seen).toHaveLength(1); // the CONNECT was resent every 200 ms meanwhile
    expect(a.accepted).toHaveLength(1);
    w.close();
    // A Promise settles on the real event loop: let it, then let virtual time catch up.
    const v = world();
    let resolve: (allowed: boolean) => void = () => undefined;
    const b = attempt(v, '10.0.0.1', () => new Promise<boolean>((r) => (resolve = r)), secure);
    expect(b.accepted).toHaveLength(0);
    resolve(true);
    await Promise.resolve();
    v.run(1000);
    expect(b.accepted).toHaveLength(1);
    expect(b.result.error).toBeUndefined();
    v.close();
  });

  test('a throwing, failing or empty answer refuses; the next attempt is asked afresh', () => {
    const answers: ((w: World) => Verdict)[] = [
      () => {
        throw new Error('policy store down');
      },
      (w) => timer(10, w.scheduler).pipe(map((): boolean => { throw new Error('lookup failed'); })),
      () => of<boolean>(),
    ];
    for (const answer of answers) {
      const w = world();
      const a = attempt(w, '10.0.0.1', (x) => (x.address === '10.0.0.1' ? answer(w) : true), secure);
      expect(a.result.error).toBeInstanceOf(ConnectionRefusedError);
      expect(a.accepted).toHaveLength(0);
      let second: Connection | undefined;
      w.keep(connect(w.network, { from: '10.0.0.3', host: LISTENER_HOST, port: LISTENER_PORT, ...(secure ? { secure: { serverPublicKey: a.keys.publicKey } } : {}) }).subscribe((c) => void (second = c)));
      w.run(2000);
      expect(second).toBeDefined();
      expect(a.accepted).toHaveLength(1);
      w.close();
    }
  });
});

test.each(['always', 'auto'] as const)('100,000 spoofed secure CONNECTs, retry %s: answered by RETRYs smaller than them, nothing kept, heap flat; an honest starter connects', (RETRY_MODE) => {
  const w = world();
  const keys = generateKeyPair();
  // Answers to the spoofed sources (10.1.*) go nowhere; they are counted.
  const socket = spoofable(w.network.socketFactory(LISTENER_HOST), (address) => address.startsWith('10.1.'));
  let stats: EndpointStats | undefined;
  let accepted = 0;
  w.keep(
    listenOverUdp({
      host: LISTENER_HOST,
      port: LISTENER_PORT,
      scheduler: w.scheduler,
      socketFactory: socket.factory,
      secure: { privateKey: keys.privateKey, retry: RETRY_MODE },
      onListening: (_, s) => void (stats = s),
    }).subscribe((c) => {
      accepted++;
      c.messages$.subscribe({ next: (m) => c.send$.next(m), error: () => undefined });
    }),
  );
  // Well-formed CONNECTs with a real handshake message for the listener's key: without retry,
  // each would cost an X25519 and a half-open connection.
  const serverKey = publicKeyFrom('test', keys.publicKey);
  const template = (() => {
    const fields = { type: PacketType.Connect, connectionId: 1, maxDatagramSize: 1200, receiveWindow: 64, nonce: 7 } as const;
    const initiator = new NkInitiator(serverKey, encode(fields).subarray(0, 14));
    return encode({ ...fields, extensions: [{ id: SECURE_EXTENSION_ID, params: encodeOffer({ pattern: PATTERN_NK, message: initiator.message }) }], paddedSize: 128 });
  })();
  expect(template.length).toBe(128);
  w.run(1);
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  let sent = 0;
  for (let batch = 0; batch < 100; batch++) {
    for (let i = 0; i < FLOOD / 100; i++, sent++) {
      const datagram = Buffer.from(template);
      datagram.writeUInt32BE(0x10000000 + sent, 2); // a fresh id each
      socket.inject(datagram, `10.1.${(sent >> 8) & 0xff}.${sent & 0xff}`, 1024 + (sent % 50000));
    }
    w.run(100);
  }
  w.run(1000);
  gc();
  const growth = process.memoryUsage().heapUsed - heapBefore;
  expect(accepted).toBe(0);
  // 'auto' lets 64 handshakes a second through (the flood lasted 10 s): those fail, answered by a short CLOSE.
  const handshakesAllowed = RETRY_MODE === 'always' ? 0 : 64 * 11;
  expect(stats!.retriesSent).toBeGreaterThanOrEqual(FLOOD - handshakesAllowed);
  expect(stats!.retriesSent + stats!.handshakeFailures).toBe(FLOOD);
  expect(socket.diverted.datagrams).toBe(FLOOD);
  expect(socket.diverted.bytes).toBeLessThanOrEqual(FLOOD * 64);
  expect(RETRY_SIZE).toBeLessThan(template.length);
  expect(growth).toBeLessThan(2 * MiB);

  // An honest starter proves its address with the token and connects.
  let echoed = '';
  w.keep(
    connect(w.network, { from: STARTER_HOST, host: LISTENER_HOST, port: LISTENER_PORT, secure: { serverPublicKey: keys.publicKey } }).subscribe((c) => {
      c.messages$.subscribe((m) => void (echoed = Buffer.from(m).toString()));
      c.send$.next(Buffer.from('after the flood'));
    }),
  );
  w.run(2000);
  expect(echoed).toBe('after the flood');
  expect(accepted).toBe(1);
  w.close();
});
