/**
 * No stream of the API errors with `undefined` (or a bare non-Error value): a transport plugged
 * in through `socketFactory` that fails with nothing to say still ends connect(), listen() and
 * the connections' streams with a typed error that says what failed.
 */
import { Observable, Subject, map, merge, throwError } from 'rxjs';
import { ConnectionClosedError, RudpError, type Connection, type SocketFactory } from '../../lib/index';
import { connect, listen } from '../../lib/index';
import { ending, LISTENER, PORT, STARTER, world } from './world';

/** Wraps a virtual socket factory: `fail()` errors the socket's datagrams$ with `undefined`; `throwOnSend` makes send() throw it. */
function faulty(inner: SocketFactory, behaviour: { throwOnSend?: boolean } = {}) {
  const failure$ = new Subject<never>();
  const factory: SocketFactory = (options) =>
    inner(options).pipe(
      map((socket) => ({
        datagrams$: merge(socket.datagrams$, failure$),
        send: (data: Uint8Array, port: number, address: string, onError?: (error: Error) => void) => {
          // A transport that breaks its contract (send never throws): the handshake must still end typed.
          if (behaviour.throwOnSend === true) throw undefined; // eslint-disable-line @typescript-eslint/only-throw-error
          socket.send(data, port, address, onError);
        },
        address: () => socket.address(),
      })),
    );
  return { factory, fail: () => failure$.error(undefined) };
}

const typed = (outcome: unknown) => expect(outcome).toEqual({ kind: 'error', error: expect.any(RudpError) });

describe('never an undefined error', () => {
  it('connect(): a socket that fails with undefined while connecting', () => {
    const w = world();
    const socket = faulty(w.network.socketFactory(STARTER));
    const started = w.watch(connect({ host: LISTENER, port: PORT, scheduler: w.scheduler, socketFactory: socket.factory }));
    w.run(1);
    socket.fail();
    typed(started.end);
    expect((started.end as { error: Error }).error.message).toMatch(/socket failed/);
    w.close();
  });

  it('connect() and the connection: a socket that fails with undefined once open', () => {
    const w = world();
    w.keep(listen({ host: LISTENER, port: PORT, scheduler: w.scheduler, socketFactory: w.network.socketFactory(LISTENER) }).subscribe((c) => c.messages$.subscribe({ error: () => undefined })));
    const socket = faulty(w.network.socketFactory(STARTER));
    const started = w.watch(connect({ host: LISTENER, port: PORT, scheduler: w.scheduler, socketFactory: socket.factory }));
    w.run(50);
    const seen = ending(started.values[0]!);
    socket.fail();
    typed(started.end);
    expect(seen.messagesEnd).toEqual({ kind: 'error', error: expect.any(ConnectionClosedError) });
    expect(seen.closed?.error).toBeInstanceOf(ConnectionClosedError);
    w.close();
  });

  it('connect(): a socket factory that fails with undefined', () => {
    const w = world();
    const started = w.watch(connect({ host: LISTENER, port: PORT, scheduler: w.scheduler, socketFactory: () => throwError(() => undefined) }));
    w.run(1);
    typed(started.end);
    w.close();
  });

  it('connect(): a transport whose send() throws undefined during the handshake', () => {
    const w = world();
    const socket = faulty(w.network.socketFactory(STARTER), { throwOnSend: true });
    const started = w.watch(connect({ host: LISTENER, port: PORT, scheduler: w.scheduler, socketFactory: socket.factory }));
    w.run(10);
    typed(started.end);
    w.close();
  });

  it('listen(): a socket factory that fails with undefined', () => {
    const w = world();
    const listening = w.watch(listen({ host: LISTENER, port: PORT, scheduler: w.scheduler, socketFactory: () => throwError(() => undefined) }));
    w.run(1);
    typed(listening.end);
    w.close();
  });

  it("listen() and its connections: a socket that fails with undefined", () => {
    const w = world();
    const socket = faulty(w.network.socketFactory(LISTENER));
    const accepted: Connection[] = [];
    const listening = w.watch(
      new Observable<Connection>((subscriber) =>
        listen({ host: LISTENER, port: PORT, scheduler: w.scheduler, socketFactory: socket.factory }).subscribe({
          next: (c) => {
            accepted.push(c);
            subscriber.next(c);
          },
          error: (e: unknown) => subscriber.error(e),
        }),
      ),
    );
    w.watch(connect({ host: LISTENER, port: PORT, scheduler: w.scheduler, socketFactory: w.network.socketFactory(STARTER) }));
    w.run(50);
    const seen = ending(accepted[0]!);
    socket.fail();
    typed(listening.end);
    expect(seen.messagesEnd).toEqual({ kind: 'error', error: expect.any(ConnectionClosedError) });
    w.close();
  });
});
