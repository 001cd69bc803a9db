import type { Observable } from 'rxjs';
import type { Connection } from '../core/connection';
import { ConnectionClosedError } from '../core/errors';
import { connect, type ConnectOptions } from './connect';

/**
 * Connects, for async/await code: resolves with the connection once it is open. The connection
 * then lives until `close()` or until it ends (the peer closes, a timeout, …), and its socket is
 * closed then; how it ended is on its `messages$` and `closed$`. Rejects with the error connect()
 * would give (ConnectTimeoutError, ConnectionRefusedError, InvalidOptionError, …).
 */
export function open(options: ConnectOptions): Promise<Connection> {
  try {
    return openFrom(connect(options));
  } catch (error) {
    return Promise.reject(error as Error); // an invalid option: rejected like any other failure to connect
  }
}

/** open() over any connect()-like Observable (the testing kit's connect too). */
export function openFrom(connection$: Observable<Connection>): Promise<Connection> {
  return new Promise<Connection>((resolve, reject) => {
    let opened = false;
    // Never unsubscribed here: connect() completes or errors when the connection ends, and that
    // releases the socket. Until then the subscription is what keeps the connection open.
    connection$.subscribe({
      next: (connection) => {
        opened = true;
        resolve(connection);
      },
      // After the open, the connection's own streams report how it ended.
      error: (error: unknown) => {
        if (!opened) reject(error);
      },
      complete: () => {
        if (!opened) reject(new ConnectionClosedError('connect() completed without a connection'));
      },
    });
  });
}
