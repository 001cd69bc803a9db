import { catchError, throwError, type Observable, type Subject } from 'rxjs';
import type { CloseInfo, Connection, ConnectionEvent, ConnectionState, ConnectionCore, RemoteAddress } from '../core/connection';
import { ConnectionClosedError } from '../core/errors';
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

  get send$(): Subject<Uint8Array> {
    return this.#core.send$;
  }

  send(message: Uint8Array): Observable<void> {
    return this.#core.send(message).pipe(catchError((error: unknown) => throwError(() => explainClosed(this.#core, error))));
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
}

/**
 * A send() that failed because the connection closed without an error of its own (a normal or
 * deliberate close) gets a generic "closed before acknowledged" from the core: add the close's
 * text, which says why (the connect() subscription ended, the listener shut down, the peer's words).
 */
function explainClosed(core: ConnectionCore, error: unknown): unknown {
  if (!(error instanceof ConnectionClosedError)) return error;
  let info: CloseInfo | undefined;
  core.closed$.subscribe((i) => (info = i)).unsubscribe(); // replays at once once closed
  if (info === undefined || info.error !== undefined || info.text === '' || error.message.includes(info.text)) return error;
  const why = info.byPeer ? `the peer closed it (${info.text})` : info.text;
  return new ConnectionClosedError(`${error.message}: ${why}`, info.reason);
}
