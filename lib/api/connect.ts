import { Observable, catchError, map, switchMap, throwError, type SchedulerLike } from 'rxjs';
import { asFailure } from '../core/close';
import type { Connection } from '../core/connection';
import { emptyEndpointStats } from '../core/endpoint';
import { InvalidOptionError } from '../core/errors';
import { publicKeyFrom } from '../core/secure/keys';
import type { KeyObject } from 'node:crypto';
import { resolveProtocolOptions, type ProtocolOptions } from '../core/options';
import { useResource } from '../core/resource';
import { openConnection } from '../core/starter';
import type { SocketFactory } from '../core/transport';
import { realTimeScheduler } from '../node/scheduler';
import { resolveHost } from '../node/resolve';
import { udpSocketFactory } from '../node/udp-socket';
import { PublicConnection } from './public-connection';
import { channelsExtension } from '../core/channels/extension';

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
  /**
   * Offer (or accept) the "channels" extension (docs/protocol.md §13.2), so that `channel(id)`
   * works for ids 1..255: separately ordered streams, unordered delivery, ttl and priorities.
   * Both sides must enable it; with a peer that did not, only channel 0 works. Default false.
   */
  channels?: boolean;
  /**
   * Encrypt and authenticate the connection (docs/protocol.md §13.1): only the holder of the
   * listener's private key can answer, and every packet is sealed. Required once set: a listener
   * without encryption, or a wrong key, fails with HandshakeError; there is no fallback to plain.
   */
  secure?: SecureConnectOptions;
}

export interface SecureConnectOptions {
  /** The listener's X25519 public key: a KeyObject, 32 raw bytes, or its base64 text (the line of its `.pub` file). */
  serverPublicKey: KeyObject | Uint8Array | string;
}

/** Internal hooks for tests (not public API): see connectWithTestHooks. */
export interface ConnectTestHooks {
  readonly connectionId?: number;
  readonly initialSeq?: number;
  readonly initialBatch?: number;
  readonly rekeyInterval?: number;
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
  const { rekeyInterval, ...starterHooks } = hooks;
  const secure =
    options.secure === undefined
      ? undefined
      : { serverPublicKey: publicKeyFrom('secure.serverPublicKey', options.secure.serverPublicKey), ...(rekeyInterval === undefined ? {} : { rekeyInterval }) };
  return resolveHost(options.host).pipe(
    switchMap((remote) =>
      useResource(
        factory({
          type: remote.type,
          ...(options.localAddress === undefined ? {} : { address: options.localAddress }),
          port: options.localPort ?? 0,
          peer: { address: remote.address, port },
        }),
        (socket) =>
          openConnection(socket, { address: remote.address, port, options: protocol, scheduler, stats: emptyEndpointStats(), ...(secure === undefined ? {} : { secure }), ...(options.channels === true ? { extensions: [channelsExtension] } : {}), ...starterHooks }),
      ),
    ),
    map((core): Connection => new PublicConnection(core)),
    // A socket factory (the transport seam) may fail with anything, even undefined.
    catchError((error: unknown) => throwError(() => asFailure(error, 'the socket could not be opened'))),
  );
}
