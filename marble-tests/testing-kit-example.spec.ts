/**
 * The README's testing-kit example, kept true: the request/response app of
 * examples/request-response.ts marble-tested over the virtual network, in virtual time.
 */
// #region readme
import { TestScheduler } from 'rxjs/testing';
import { concat, map, mergeMap, switchMap, tap, timer } from 'rxjs';
import { VirtualNetwork, listen, connect } from '../lib/testing/index';
import { requester, serve, type Exchange } from '../examples/request-response';

const SERVER = '10.0.0.2';
const CLIENT = '10.0.0.1';
const short = (e: Exchange): string => (e.kind === 'reply' ? e.body : `ack ${e.id}`);

describe('request/response on the virtual network', () => {
  let scheduler: TestScheduler;
  beforeEach(() => (scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected))));

  function run(network: VirtualNetwork) {
    // The server answers with the upper-cased request after 30 ms of work.
    const server = listen(network, { host: SERVER, port: 7000 })
      .pipe(mergeMap((conn) => serve(conn, (body) => timer(30).pipe(map(() => body.toUpperCase())))))
      .subscribe();
    // The client asks twice, one request after the other, then closes.
    const exchanges$ = connect(network, { from: CLIENT, host: SERVER, port: 7000 }).pipe(
      switchMap((conn) => {
        const ask = requester(conn);
        return concat(ask('hello'), ask('world')).pipe(map(short), tap({ complete: () => conn.close() }));
      }),
    );
    return { server, exchanges$ };
  }

  it('answers in order: handshake 20 ms, then per request ack after 20 ms and reply after 50 ms', () => {
    scheduler.run(({ expectObservable }) => {
      const network = new VirtualNetwork({ scheduler, default: { delay: 10 } }); // 10 ms each way
      const { server, exchanges$ } = run(network);
      expectObservable(exchanges$).toBe('40ms a 29ms b 19ms c 29ms (d|)', { a: 'ack 1', b: 'HELLO', c: 'ack 2', d: 'WORLD' });
      scheduler.schedule(() => server.unsubscribe(), 1000); // stop the listener, so that run() has an end
    });
  });

  it('recovers a lost request: retransmitted after the retransmission timeout (60 ms, from the handshake round trip)', () => {
    scheduler.run(({ expectObservable }) => {
      const network = new VirtualNetwork({ scheduler, default: { delay: 10 } });
      // Datagram 2 from the client is the first request's DATA (0 is CONNECT, 1 the DATA_ACK that
      // greets the listener): lose it once.
      network.setLink(CLIENT, SERVER, { delay: 10, drop: (_datagram, index) => index === 2 });
      const { server, exchanges$ } = run(network);
      expectObservable(exchanges$).toBe('100ms a 29ms b 19ms c 29ms (d|)', { a: 'ack 1', b: 'HELLO', c: 'ack 2', d: 'WORLD' });
      scheduler.schedule(() => server.unsubscribe(), 1000);
    });
  });
});
// #endregion
