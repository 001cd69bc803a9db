/**
 * A listener and raw peers on a virtual network in virtual time, for the API specs: every socket
 * and subscription is released by `close()`, and `run(ms)` moves the clock.
 */
import { VirtualAction, VirtualTimeScheduler, type Observable, type Subscription } from 'rxjs';
import type { CloseInfo, Connection, ConnectionState } from '../../lib/index';
import type { Datagram, DatagramSocket } from '../../lib/core/transport';
import { VirtualNetwork } from '../../lib/testing/index';
import { decode, encode } from '../../lib/wire/codec';
import type { Packet } from '../../lib/wire/packet';

export const LISTENER = '10.0.0.2';
export const STARTER = '10.0.0.1';
export const PORT = 5000;

/** How an Observable ended, as a test sees it. */
export type Outcome<T> = { values: T[]; end: undefined | { kind: 'complete' } | { kind: 'error'; error: unknown } };

export function world() {
  const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
  const network = new VirtualNetwork({ scheduler });
  const subscriptions: Subscription[] = [];
  /** Advances virtual time by `ms` (a no-op action makes time move even when nothing else is due). */
  const run = (ms: number): void => {
    scheduler.schedule(() => undefined, ms);
    scheduler.maxFrames = scheduler.now() + ms;
    scheduler.flush();
  };
  /** Subscribes and records what `source$` emits and how it ends. */
  const watch = <T>(source$: Observable<T>): Outcome<T> => {
    const outcome: Outcome<T> = { values: [], end: undefined };
    subscriptions.push(
      source$.subscribe({
        next: (v) => void outcome.values.push(v),
        error: (error: unknown) => (outcome.end = { kind: 'error', error }),
        complete: () => (outcome.end = { kind: 'complete' }),
      }),
    );
    return outcome;
  };
  /** A raw socket at `host`: the packets it receives, and a way to send packets. */
  const raw = (host: string, port = 0) => {
    let socket: DatagramSocket | undefined;
    const received: { packet: Packet; from: Datagram }[] = [];
    subscriptions.push(network.socketFactory(host)({ type: 'udp4', port }).subscribe((s) => (socket = s)));
    subscriptions.push(socket!.datagrams$.subscribe((d) => void received.push({ packet: decode(d.data) as Packet, from: d })));
    return { received, send: (packet: Packet, toPort: number, toHost: string) => socket!.send(encode(packet), toPort, toHost) };
  };
  return {
    scheduler,
    network,
    run,
    watch,
    raw,
    keep: (s: Subscription) => void subscriptions.push(s),
    close: () => subscriptions.splice(0).reverse().forEach((s) => s.unsubscribe()),
  };
}

/** Everything a connection tells about its end, recorded from the moment it is emitted. */
export function ending(conn: Connection) {
  const record: { messages: string[]; messagesEnd: Outcome<unknown>['end']; closed: CloseInfo | undefined; states: ConnectionState[] } = {
    messages: [],
    messagesEnd: undefined,
    closed: undefined,
    states: [],
  };
  conn.messages$.subscribe({
    next: (m) => void record.messages.push(Buffer.from(m).toString()),
    error: (error: unknown) => (record.messagesEnd = { kind: 'error', error }),
    complete: () => (record.messagesEnd = { kind: 'complete' }),
  });
  conn.closed$.subscribe((info) => (record.closed = info));
  conn.state$.subscribe((s) => void record.states.push(s));
  return record;
}
