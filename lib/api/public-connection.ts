import type { Observable, ObservableInput, Subject } from 'rxjs';
import type { Channel, ChannelOptions, CloseInfo, Connection, ConnectionEvent, ConnectionState, ConnectionCore, ReceiveOptions, RemoteAddress } from '../core/connection';
import type { ConnectionStats } from '../core/stats';

/**
 * What listen() and connect() emit: the documented Connection API and nothing else. The protocol
 * core (which the listener and starter drive through packet-level methods) stays in a private
 * field, so those methods cannot be reached, or called by accident, from an application.
 */
export class PublicConnection implements Connection {
  readonly #core: ConnectionCore;

  constructor(core: ConnectionCore) {
    this.#core = core;
    core.onSendAfterClose = warnSendAfterClose;
  }

  get id(): number {
    return this.#core.id;
  }

  get remote(): RemoteAddress {
    return this.#core.remote;
  }

  get messages$(): Observable<Uint8Array> {
    return this.#core.messages$;
  }

  receive<R>(handler: (message: Uint8Array) => ObservableInput<R>, options?: ReceiveOptions): Observable<R> {
    return this.#core.receive(handler, options);
  }

  get send$(): Subject<Uint8Array> {
    return this.#core.send$;
  }

  send(message: Uint8Array): Observable<void> {
    return this.#core.send(message);
  }

  get bufferedBytes$(): Observable<number> {
    return this.#core.bufferedBytes$;
  }

  get maxBufferedBytes(): number {
    return this.#core.maxBufferedBytes;
  }

  statsEvery(intervalMs: number): Observable<ConnectionStats> {
    return this.#core.statsEvery(intervalMs);
  }

  get events$(): Observable<ConnectionEvent> {
    return this.#core.events$;
  }

  get direct$(): Observable<Uint8Array> {
    return this.#core.direct$;
  }

  sendDirect(payload: Uint8Array): boolean {
    return this.#core.sendDirect(payload);
  }

  get maxDirectSize(): number {
    return this.#core.maxDirectSize;
  }

  get state$(): Observable<ConnectionState> {
    return this.#core.state$;
  }

  get closed$(): Observable<CloseInfo> {
    return this.#core.closed$;
  }

  get stats(): ConnectionStats {
    return this.#core.stats;
  }

  close(): void {
    this.#core.close();
  }

  channel(id: number, options?: ChannelOptions): Channel {
    return this.#core.channel(id, options);
  }
}

/**
 * send$ is a Subject, so a message pushed into it after the close cannot fail where it was pushed
 * (throwing there would crash a piped producer). It is dropped, counted in `stats.sendsAfterClose`,
 * and said once per connection, on the process's warning channel, with the reason it closed.
 */
function warnSendAfterClose(this: void, info: CloseInfo): void {
  if (warned.has(info)) return;
  warned.add(info);
  const why = info.error?.message ?? `closed ${info.byPeer ? 'by the peer' : 'on this side'} (reason ${info.reason}${info.text === '' ? '' : `: ${info.text}`})`;
  process.emitWarning(`a message was pushed into send$ after the connection closed, and was dropped: ${why}. Use send() to learn the outcome of each message.`, 'RxRudpWarning');
}

const warned = new WeakSet<CloseInfo>();
