/**
 * An echo server and a client in one process, on loopback (the README's first example).
 *
 *   npm run example -- echo-server         (PORT=7001 npm run example -- echo-server for another port)
 *
 * In your project, import from 'rx-rudp' instead of '../lib/index'.
 */
// #region readme
import { listen, connect } from '../lib/index';
import { switchMap, take, tap } from 'rxjs';

const port = Number(process.env.PORT ?? 7000);

// Server: echo every message back.
const server = listen({ host: '127.0.0.1', port }).subscribe((conn) => {
  conn.messages$.subscribe({ next: (m) => conn.send$.next(m), error: (e: Error) => console.error(e.message) });
  conn.closed$.subscribe(() => server.unsubscribe()); // a demo: stop when the first client has gone
});

// Client: send two messages, print the echoes, then close.
connect({ host: '127.0.0.1', port })
  .pipe(
    switchMap((conn) => {
      conn.send$.next(Buffer.from('hello'));
      conn.send$.next(Buffer.from('world'));
      return conn.messages$.pipe(take(2), tap({ complete: () => conn.close() }));
    }),
  )
  .subscribe({ next: (m) => console.log(Buffer.from(m).toString()), error: (e: Error) => console.error(e.message) });
// #endregion
