import { Observable, catchError, map, switchMap, throwError, type SchedulerLike } from 'rxjs';
import { asFailure } from '../core/close';
import type { Connection } from '../core/connection';
import { emptyEndpointStats } from '../core/endpoint';
import { InvalidOptionError } from '../core/errors';
import { resolveProtocolOptions, type ProtocolOptions } from '../core/options';
import { useResource } from '../core/resource';
import { openConnection } from '../core/starter';
import type { SocketFactory } from '../core/transport';
import { realTimeScheduler } from '../node/scheduler';
import { resolveHost } from '../node/resolve';
import { udpSocketFactory } from '../node/udp-socket';
import { PublicConnection } from './public-connection';

export interface ConnectOptions extends ProtocolOptions {
  /** The listener's host name or address. */
  host: string;
  /** The listener's port. */
  port: number;
  /** Local address to bind; default all interfaces of the peer's family. */
  localAddress?: string;
  /** Local port; default 0 (any free port). */
  localPort?: number;
  /** Transport seam: how sockets are opened. Default: node:dgram. */
  socketFactory?: SocketFactory;
}

/** Internal hooks for tests (not public API): see connectWithTestHooks. */
export interface ConnectTestHooks {
  readonly connectionId?: number;
  readonly initialSeq?: number;
  readonly initialBatch?: number;
}

/**
 * Connects to a listener. Subscribing opens a socket and handshakes; the connection is emitted
 * once open. Completes when the connection closes normally (reason 0, from either side); errors
 * with the connection's typed error when it ends abnormally (ConnectionTimeoutError,
 * ProtocolError, ConnectionClosedError, …), and before it opens with ConnectTimeoutError after
 * `connectTimeout` or ConnectionRefusedError. Unsubscribing closes the connection and the socket:
 * keep the subscription for as long as you use the connection, or use open().
 */
export function connect(options: ConnectOptions): Observable<Connection> {
  return connectWithTestHooks(options, {});
}

/**
 * connect() with test hooks (a fixed connection id, first seq/batch): for the project's own specs
 * and tools, not exported by the library.
 */
export function connectWithTestHooks(options: ConnectOptions, hooks: ConnectTestHooks): Observable<Connection> {
  const protocol = resolveProtocolOptions(options);
  if (typeof options.host !== 'string' || options.host === '') throw new InvalidOptionError('host', options.host, 'a host name or IP address');
  const port = options.port;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidOptionError('port', port, 'an integer from 1 to 65535');
  const scheduler: SchedulerLike = options.scheduler ?? realTimeScheduler;
  const factory = options.socketFactory ?? udpSocketFactory;
  return resolveHost(options.host).pipe(
    switchMap((remote) =>
      useResource(
        factory({
          type: remote.type,
          ...(options.localAddress === undefined ? {} : { address: options.localAddress }),
          port: options.localPort ?? 0,
          peer: { address: remote.address, port },
        }),
        (socket) => openConnection(socket, { address: remote.address, port, options: protocol, scheduler, stats: emptyEndpointStats(), ...hooks }),
      ),
    ),
    map((core): Connection => new PublicConnection(core)),
    // A socket factory (the transport seam) may fail with anything, even undefined.
    catchError((error: unknown) => throwError(() => asFailure(error, 'the socket could not be opened'))),
  );
}
