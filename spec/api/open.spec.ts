/**
 * The async/await path: open() resolves with a connection that lives until close() or the end of
 * the connection (and then releases its socket), and rejects with the typed connect error. And
 * the old mistake, firstValueFrom(connect(…)), fails loudly: the close says why.
 */
import { firstValueFrom, lastValueFrom, take } from 'rxjs';
import { ConnectionClosedError, ConnectionRefusedError, ConnectTimeoutError, open as openOverUdp, type Connection } from '../../lib/index';
import { connect, listen, open } from '../../lib/testing/index';
import { CloseReason } from '../../lib/wire/packet';
import { ending, LISTENER, PORT, STARTER, world } from './world';

/** The port the starter's socket gets: the first ephemeral one of its host. */
const STARTER_PORT = 49152;

/** An echo listener; its connections are kept in `accepted`. */
function echo(w: ReturnType<typeof world>, options: { maxConnections?: number } = {}) {
  const accepted: Connection[] = [];
  w.keep(
    listen(w.network, { host: LISTENER, port: PORT, ...options }).subscribe((c) => {
      accepted.push(c);
      c.messages$.subscribe({ next: (m) => c.send$.next(m), error: () => undefined });
    }),
  );
  return accepted;
}

/** Settles `promise` while virtual time runs for `ms`. */
async function settle<T>(w: ReturnType<typeof world>, promise: Promise<T>, ms: number): Promise<{ value?: T; error?: unknown }> {
  const outcome: { value?: T; error?: unknown } = {};
  const settled = promise.then(
    (value) => void (outcome.value = value),
    (error: unknown) => void (outcome.error = error),
  );
  w.run(ms);
  await settled;
  return outcome;
}

describe('open()', () => {
  it('resolves with a connection that stays open after the await: a message is echoed', async () => {
    const w = world();
    echo(w);
    const { value: conn } = await settle(w, open(w.network, { from: STARTER, host: LISTENER, port: PORT }), 50);
    const seen = ending(conn!);
    conn!.send$.next(Buffer.from('still here'));
    w.run(50);
    expect(seen.messages).toEqual(['still here']);
    expect(seen.states).toEqual(['open']);
    expect(w.network.isBound(STARTER, STARTER_PORT)).toBe(true);
    w.close();
  });

  it('send() on it completes once acknowledged', async () => {
    const w = world();
    echo(w);
    const { value: conn } = await settle(w, open(w.network, { from: STARTER, host: LISTENER, port: PORT }), 50);
    const { error } = await settle(w, lastValueFrom(conn!.send(Buffer.from('acked')), { defaultValue: undefined }), 50);
    expect(error).toBeUndefined();
    w.close();
  });

  it('releases the socket when the application closes the connection', async () => {
    const w = world();
    const accepted = echo(w);
    const { value: conn } = await settle(w, open(w.network, { from: STARTER, host: LISTENER, port: PORT }), 50);
    const server = ending(accepted[0]!);
    conn!.close();
    w.run(50);
    expect(server.closed).toEqual({ reason: CloseReason.Normal, text: '', byPeer: true, error: undefined });
    expect(w.network.isBound(STARTER, STARTER_PORT)).toBe(false);
    w.close();
  });

  it('releases the socket when the peer ends the connection', async () => {
    const w = world();
    const accepted = echo(w);
    const { value: conn } = await settle(w, open(w.network, { from: STARTER, host: LISTENER, port: PORT }), 50);
    const seen = ending(conn!);
    accepted[0]!.close();
    w.run(50);
    expect(seen.closed).toEqual({ reason: CloseReason.Normal, text: '', byPeer: true, error: undefined });
    expect(w.network.isBound(STARTER, STARTER_PORT)).toBe(false);
    w.close();
  });

  it('rejects with ConnectTimeoutError when nothing answers, and releases the socket', async () => {
    const w = world();
    const { error } = await settle(w, open(w.network, { from: STARTER, host: LISTENER, port: PORT, connectTimeout: 1000 }), 1100);
    expect(error).toBeInstanceOf(ConnectTimeoutError);
    expect(w.network.isBound(STARTER, STARTER_PORT)).toBe(false);
    w.close();
  });

  it('rejects with ConnectionRefusedError when the listener is full', async () => {
    const w = world();
    echo(w, { maxConnections: 0 });
    const { error } = await settle(w, open(w.network, { from: STARTER, host: LISTENER, port: PORT }), 50);
    expect(error).toBeInstanceOf(ConnectionRefusedError);
    w.close();
  });

  it('is exported by the library too, with the options of connect()', async () => {
    const w = world();
    echo(w);
    const opening = openOverUdp({ host: LISTENER, port: PORT, scheduler: w.scheduler, socketFactory: w.network.socketFactory(STARTER) });
    const { value: conn } = await settle(w, opening, 50);
    expect(ending(conn!).states).toEqual(['open']);
    w.close();
  });
});

describe('the subscription of connect() is the connection', () => {
  it.each([
    ['firstValueFrom', (w: ReturnType<typeof world>) => settle(w, firstValueFrom(connect(w.network, { from: STARTER, host: LISTENER, port: PORT })), 50)],
    [
      'take(1)',
      async (w: ReturnType<typeof world>) => {
        const taken = w.watch(connect(w.network, { from: STARTER, host: LISTENER, port: PORT }).pipe(take(1)));
        w.run(50);
        return { value: taken.values[0] };
      },
    ],
  ])('ended by %s: the close says so, and send() errors with that reason', async (_, start) => {
    const w = world();
    const accepted = echo(w);
    const { value: conn } = await start(w);
    const seen = ending(conn!);
    expect(seen.closed?.reason).toBe(CloseReason.Normal);
    expect(seen.closed?.text).toMatch(/connect\(\) subscription ended.*open\(\)/);
    const { error } = await settle(w, lastValueFrom(conn!.send(Buffer.from('lost?')), { defaultValue: undefined }), 50);
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect((error as Error).message).toMatch(/connect\(\) subscription ended.*open\(\)/);
    // The peer learns the same reason.
    expect(ending(accepted[0]!).closed?.text).toMatch(/connect\(\) subscription ended/);
    w.close();
  });
});
