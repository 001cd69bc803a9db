/**
 * Request/response over rx-rudp: `serve` answers requests, `requester` sends them and follows
 * each one to its acknowledgement (send() completing: the server has it) and its reply. The
 * same code is marble-tested on the virtual network in marble-tests/testing-kit-example.spec.ts.
 *
 *   npm run example -- request-response
 *
 * In your project, import from 'rx-rudp' instead of '../lib/index'.
 */
// #region readme
import { concat, defer, first, from, ignoreElements, map, merge, mergeMap, of, type Observable, type ObservableInput } from 'rxjs';
import type { Connection } from '../lib/index';

/** What happens to one request: acknowledged (the server has it), then answered. */
export type Exchange =
  | { readonly kind: 'acknowledged'; readonly id: number }
  | { readonly kind: 'reply'; readonly id: number; readonly body: string };

interface Envelope {
  readonly id: number;
  readonly body: string;
}
const encode = (envelope: Envelope): Uint8Array => Buffer.from(JSON.stringify(envelope));
const decode = (message: Uint8Array): Envelope => JSON.parse(Buffer.from(message).toString()) as Envelope;

/** Server side: answers each request on `conn` with `handler(body)`; completes when the connection closes. */
export function serve(conn: Connection, handler: (body: string) => ObservableInput<string>): Observable<never> {
  return conn.messages$.pipe(
    map(decode),
    mergeMap(({ id, body }) => from(handler(body)).pipe(map((reply) => conn.send$.next(encode({ id, body: reply }))))),
    ignoreElements(),
  );
}

/** Client side: a function that sends one request per subscription and emits its Exchanges. */
export function requester(conn: Connection): (body: string) => Observable<Exchange> {
  let lastId = 0;
  return (body) =>
    defer(() => {
      const id = ++lastId;
      // Listen first (messages$ is hot), then send: send() queues at once, completes when acknowledged.
      const reply$ = conn.messages$.pipe(
        map(decode),
        first((reply) => reply.id === id),
        map((reply): Exchange => ({ kind: 'reply', id, body: reply.body })),
      );
      const acknowledged$ = concat(conn.send(encode({ id, body })).pipe(ignoreElements()), of<Exchange>({ kind: 'acknowledged', id }));
      return merge(reply$, acknowledged$);
    });
}
// #endregion

import { ReplaySubject, firstValueFrom, lastValueFrom, switchMap, tap, timer } from 'rxjs';
import { connect, listen } from '../lib/index';

async function main(): Promise<void> {
  const port$ = new ReplaySubject<number>(1);
  // The service: upper-cases the request after 20 ms of "work".
  const server = listen({ host: '127.0.0.1', port: 0, onListening: (address) => port$.next(address.port) })
    .pipe(mergeMap((conn) => serve(conn, (body) => timer(20).pipe(map(() => body.toUpperCase())))))
    .subscribe({ error: (e: Error) => console.error(`server: ${e.message}`) });
  const port = await firstValueFrom(port$);

  const started = performance.now();
  const elapsed = (): string => `${Math.round(performance.now() - started)}`.padStart(4) + ' ms';
  await lastValueFrom(
    connect({ host: '127.0.0.1', port }).pipe(
      switchMap((conn) => {
        const ask = requester(conn);
        // Three requests at once; close when all are answered.
        return merge(...['hello', 'request', 'response'].map((body) => ask(body))).pipe(
          tap({
            next: (e) => console.log(`${elapsed()}  request ${e.id} ${e.kind === 'reply' ? `answered: ${e.body}` : 'acknowledged'}`),
            complete: () => conn.close(),
          }),
        );
      }),
    ),
    { defaultValue: undefined },
  );
  server.unsubscribe();
}

if (require.main === module) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
