/**
 * A chat room: a server relays each member's lines to every other member. Three clients (alice,
 * bob and carol) join in turn, say hello, print what they hear, and leave; then the server stops.
 *
 *   npm run example -- chat
 *
 * A client's first message is its name. send() completing tells the client that the server has
 * its name (a message is delivered before it is acknowledged), so it is a member from then on.
 *
 * In your project, import from 'rx-rudp' instead of '../lib/index'.
 */
import { filter, firstValueFrom, lastValueFrom, ReplaySubject, scan, Subject, type Observable, type Subscription } from 'rxjs';
import { connect, listen, type Connection } from '../lib/index';

const HOST = '127.0.0.1';
const text = (message: Uint8Array): string => Buffer.from(message).toString('utf8');

/** The chat server: its subscription (unsubscribe to stop), its port, and the number of members after each leaves. */
async function startServer(): Promise<{ server: Subscription; port: number; members$: Observable<number> }> {
  const members = new Map<Connection, string>();
  const members$ = new Subject<number>();
  const broadcast = (line: string, except: Connection): void => {
    for (const member of members.keys()) if (member !== except) member.send$.next(Buffer.from(line));
  };
  const port$ = new ReplaySubject<number>(1);
  const server = listen({ host: HOST, port: 0, onListening: (address) => port$.next(address.port) }).subscribe((conn) => {
    conn.messages$.subscribe({
      next: (message) => {
        const name = members.get(conn);
        if (name === undefined) {
          members.set(conn, text(message));
          broadcast(`* ${text(message)} joined`, conn);
        } else {
          broadcast(`<${name}> ${text(message)}`, conn);
        }
      },
      error: (e: Error) => console.error(`server: a connection failed: ${e.message}`),
    });
    conn.closed$.subscribe(() => {
      const name = members.get(conn);
      members.delete(conn);
      if (name !== undefined) broadcast(`* ${name} left`, conn);
      members$.next(members.size);
    });
  });
  return { server, port: await firstValueFrom(port$), members$ };
}

interface Client {
  readonly name: string;
  readonly conn: Connection;
  /** Every line heard, in order. */
  readonly heard$: ReplaySubject<string>;
  readonly subscription: Subscription;
}

/** Connects, and resolves once the server has the client's name. */
async function join(name: string, port: number): Promise<Client> {
  const heard$ = new ReplaySubject<string>();
  const opened = new Subject<Connection>();
  // Keep this subscription for as long as the client is connected: unsubscribing closes.
  const subscription = connect({ host: HOST, port }).subscribe({
    next: (conn) => {
      conn.messages$.subscribe({
        next: (message) => {
          console.log(`[${name}] ${text(message)}`);
          heard$.next(text(message));
        },
        error: (e: Error) => console.error(`[${name}] ${e.message}`),
      });
      opened.next(conn);
    },
    error: (e: Error) => opened.error(e),
  });
  const conn = await firstValueFrom(opened);
  await lastValueFrom(conn.send(Buffer.from(name)), { defaultValue: undefined }); // acknowledged: joined
  return { name, conn, heard$, subscription };
}

async function main(): Promise<void> {
  const { server, port, members$ } = await startServer();
  const clients: Client[] = [];
  for (const name of ['alice', 'bob', 'carol']) clients.push(await join(name, port));

  for (const client of clients) client.conn.send$.next(Buffer.from(`hello from ${client.name}`));
  // Each client waits until it has heard the two others' lines.
  await Promise.all(
    clients.map((client) => {
      const expected = clients.filter((c) => c !== client).map((c) => `<${c.name}> hello from ${c.name}`);
      const heardAll = (lines: Set<string>): boolean => expected.every((line) => lines.has(line));
      return firstValueFrom(client.heard$.pipe(scan((lines, line) => lines.add(line), new Set<string>()), filter(heardAll)));
    }),
  );
  // Everyone leaves (unsubscribing closes the connection); once the server has seen them go, it stops.
  const everyoneLeft = firstValueFrom(members$.pipe(filter((count) => count === 0)));
  for (const client of clients) client.subscription.unsubscribe();
  await everyoneLeft;
  server.unsubscribe();
  console.log('everyone heard everyone: chat over');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
