/**
 * The objects listen() and connect() emit carry the documented Connection API and nothing else:
 * no protocol internals (receive, abort, fail, greet, …) to call by accident; and connect()'s
 * test hooks are not part of its public signature.
 */
import type { Observable } from 'rxjs';
import { connect as connectOverUdp, type Connection, type ConnectOptions } from '../../lib/index';
import { connect, listen } from '../../lib/testing/index';
import { LISTENER, PORT, STARTER, world } from './world';

/** The Connection interface of the README, member by member. */
const DOCUMENTED = [
  'bufferedBytes$',
  'channel',
  'close',
  'closed$',
  'direct$',
  'events$',
  'id',
  'maxBufferedBytes',
  'maxDirectSize',
  'messages$',
  'receive',
  'remote',
  'send',
  'send$',
  'sendDirect',
  'state$',
  'stats',
  'statsEvery',
].sort();

/** Every property name reachable on `value`: its own and its prototypes', up to Object.prototype. */
function reachable(value: object): string[] {
  const names = new Set<string>();
  for (let o: object | null = value; o !== null && o !== Object.prototype; o = Object.getPrototypeOf(o) as object | null) {
    for (const name of Object.getOwnPropertyNames(o)) if (name !== 'constructor') names.add(name);
  }
  return [...names].sort();
}

function pair() {
  const w = world();
  const accepted: Connection[] = [];
  w.keep(listen(w.network, { host: LISTENER, port: PORT }).subscribe((c) => void accepted.push(c)));
  const started = w.watch(connect(w.network, { from: STARTER, host: LISTENER, port: PORT }));
  w.run(50);
  return { w, server: accepted[0]!, client: started.values[0]! };
}

describe('public connection objects', () => {
  it('expose exactly the documented members, on both sides', () => {
    const { w, server, client } = pair();
    expect(reachable(client)).toEqual(DOCUMENTED);
    expect(reachable(server)).toEqual(DOCUMENTED);
    for (const internal of ['ingest', 'abort', 'fail', 'greet', 'answerConnect', 'countDrop', 'extensions', 'state']) {
      expect(internal in client).toBe(false);
      expect(internal in server).toBe(false);
    }
    w.close();
  });

  it('still work through the documented members: a message each way, then close()', () => {
    const { w, server, client } = pair();
    const atServer = w.watch(server.messages$);
    const atClient = w.watch(client.messages$);
    client.send$.next(Buffer.from('ping'));
    server.send$.next(Buffer.from('pong'));
    w.run(50);
    expect(atServer.values.map((m) => Buffer.from(m).toString())).toEqual(['ping']);
    expect(atClient.values.map((m) => Buffer.from(m).toString())).toEqual(['pong']);
    expect(client.id).toBe(server.id);
    expect(client.remote).toEqual({ address: LISTENER, port: PORT });
    expect(client.stats.messagesSent).toBe(1);
    client.close();
    w.run(50);
    expect(atClient.end).toEqual({ kind: 'complete' });
    expect(atServer.end).toEqual({ kind: 'complete' });
    w.close();
  });

  it('connect() ignores a second argument: the test hooks are not part of its public signature', () => {
    const w = world();
    w.keep(listen(w.network, { host: LISTENER, port: PORT }).subscribe());
    // What an old caller (or a cast) could pass: it must not choose the connection id any more.
    const publicConnect = connectOverUdp as unknown as (options: ConnectOptions, hooks: unknown) => Observable<Connection>;
    const options: ConnectOptions = { host: LISTENER, port: PORT, scheduler: w.scheduler, socketFactory: w.network.socketFactory(STARTER) };
    const started = w.watch(publicConnect(options, { connectionId: 0x1234 }));
    w.run(50);
    expect(started.values).toHaveLength(1);
    expect(started.values[0]!.id).not.toBe(0x1234);
    w.close();
  });
});
