import { Observable, catchError, map, switchMap, throwError, type SchedulerLike } from 'rxjs';
import { asFailure } from '../core/close';
import type { Connection } from '../core/connection';
import { emptyEndpointStats, type EndpointStats } from '../core/endpoint';
import { InvalidOptionError } from '../core/errors';
import { acceptConnections, smallestMaxMemory } from '../core/listener';
import type { ConnectAttempt } from '../core/authorize';
import { privateKeyFrom } from '../core/secure/keys';
import type { KeyObject } from 'node:crypto';
import type { ObservableInput } from 'rxjs';
import { useResource } from '../core/resource';
import { resolveProtocolOptions, type ProtocolOptions } from '../core/options';
import type { SocketAddress, SocketFactory } from '../core/transport';
import { realTimeScheduler } from '../node/scheduler';
import { udpSocketFactory } from '../node/udp-socket';
import { resolveHost } from '../node/resolve';
import { PublicConnection } from './public-connection';
import { channelsExtension } from '../core/channels/extension';

export interface ListenOptions extends ProtocolOptions {
  /** Local port; 0 (the default) picks a free one: learn it from `onListening`. */
  port?: number;
  /** Local address to bind; default '0.0.0.0' (use '::' for IPv6). */
  host?: string;
  /** Open connections beyond which CONNECTs are refused with CLOSE reason 5. Default 1024. */
  maxConnections?: number;
  /**
   * Bytes of messages the listener holds for all its connections at most: received and not yet
   * consumed (out of order, being reassembled, or waiting for the application), and send buffers.
   * At the bound, connections' receive windows close (their peers slow down and resend), `send()`
   * refuses with SendBufferFullError (`maxBufferedBytes` shows the room left), and CONNECTs are
   * refused with CLOSE reason 5. Default 256 MiB (or the least that works with the other options);
   * at least maxMessageSize + maxDatagramSize × (receiveWindow + 1).
   */
  maxMemory?: number;
  /** Encrypt connections (docs/protocol.md §13.1) with this listener's X25519 key; plain version-1 starters are refused unless `required` is false. */
  secure?: SecureListenOptions;
  /**
   * Decides each connection attempt before anything is kept for it: true accepts, false refuses
   * (CLOSE reason 5, "not authorized"); a Promise or Observable of a boolean may answer later (its
   * first value counts; an error or no value refuses). Works with and without encryption.
   */
  authorize?: (attempt: ConnectAttempt) => boolean | ObservableInput<boolean>;
  /** Called once the socket is bound, with the real address and port. */
  onListening?: (address: SocketAddress, stats: EndpointStats) => void;
  /** Transport seam: how sockets are opened. Default: node:dgram. */
  socketFactory?: SocketFactory;
  /**
   * Share the port with other listeners (processes or threads) that ask the same: the kernel
   * spreads peers over them by source address and port (SO_REUSEPORT), so each connection stays
   * with one. Default false. Linux, Node 22.12+ or 23.1+; elsewhere ReusePortUnsupportedError.
   * `rx-rudp/cluster` runs such a group for you.
   */
  reusePort?: boolean;
  /**
   * Offer (or accept) the "channels" extension (docs/protocol.md §13.2), so that `channel(id)`
   * works for ids 1..255: separately ordered streams, unordered delivery, ttl and priorities.
   * Both sides must enable it; with a peer that did not, only channel 0 works. Default false.
   */
  channels?: boolean;
}

const DEFAULT_MAX_MEMORY = 256 * 1024 * 1024;

export interface SecureListenOptions {
  /** A KeyObject, 32 raw bytes, or the base64 text `rx-rudp keygen` writes. */
  privateKey: KeyObject | Uint8Array | string;
  /** Refuse starters that do not offer encryption (CLOSE reason 5, "encryption required"). Default true. */
  required?: boolean;
  /**
   * Ask starters to prove their address with a token before any handshake work, keeping no state
   * for them (spoofed CONNECT floods then cost no memory): 'auto' (default) once 64 connections are
   * half-open, 'always', or 'never'.
   */
  retry?: 'auto' | 'always' | 'never';
}

/** Internal hooks for tests (not public API): see listenWithTestHooks. */
export interface ListenTestHooks {
  readonly initialSeq?: number;
  readonly initialBatch?: number;
  readonly rekeyInterval?: number;
}

/**
 * Listens for connections. Subscribing binds the UDP socket; each accepted peer is emitted as a
 * Connection. Unsubscribing is a deliberate shutdown: every connection's streams complete (its
 * closed$ says reason 4, not by the peer, no error), each peer is told CLOSE reason 4, and the
 * socket closes. Options are checked when called: an invalid one throws InvalidOptionError naming it.
 */
export function listen(options: ListenOptions = {}): Observable<Connection> {
  return listenWithTestHooks(options, {});
}

/** listen() with test hooks (first seq/batch): for the project's own specs, not exported by the library. */
export function listenWithTestHooks(options: ListenOptions, hooks: ListenTestHooks): Observable<Connection> {
  const protocol = resolveProtocolOptions(options);
  const maxConnections = options.maxConnections ?? 1024;
  if (!Number.isInteger(maxConnections) || maxConnections < 0) throw new InvalidOptionError('maxConnections', maxConnections, 'a whole number >= 0');
  const smallest = smallestMaxMemory(protocol);
  const maxMemory = options.maxMemory ?? Math.max(DEFAULT_MAX_MEMORY, smallest);
  if (!Number.isInteger(maxMemory) || maxMemory < smallest) {
    throw new InvalidOptionError('maxMemory', maxMemory, `a whole number of bytes >= ${smallest} (maxMessageSize + maxDatagramSize × (receiveWindow + 1)): lower maxMessageSize or receiveWindow for a smaller bound`);
  }
  const secure = resolveSecure(options.secure, hooks.rekeyInterval);
  if (options.authorize !== undefined && typeof options.authorize !== 'function') throw new InvalidOptionError('authorize', options.authorize, 'a function of the attempt, returning a boolean (or a Promise or Observable of one)');
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidOptionError('port', port, 'an integer from 0 to 65535');
  const scheduler: SchedulerLike = options.scheduler ?? realTimeScheduler;
  const factory = options.socketFactory ?? udpSocketFactory;
  const host = options.host ?? '0.0.0.0';
  return resolveHost(host).pipe(
    switchMap((resolved) =>
      useResource(factory({ type: resolved.type, address: resolved.address, port, ...(options.reusePort === true ? { reusePort: true } : {}) }), (socket) => {
        const stats = emptyEndpointStats();
        options.onListening?.(socket.address(), stats);
        return acceptConnections(socket, {
          options: protocol,
          maxConnections,
          maxMemory,
          scheduler,
          stats,
          ...(secure === undefined ? {} : { secure }),
          ...(options.authorize === undefined ? {} : { authorize: options.authorize }),
          ...(hooks.initialSeq === undefined ? {} : { initialSeq: hooks.initialSeq }),
          ...(hooks.initialBatch === undefined ? {} : { initialBatch: hooks.initialBatch }),
          ...(options.channels === true ? { extensions: [channelsExtension] } : {}),
        });
      }),
    ),
    map((core): Connection => new PublicConnection(core)),
    // A socket factory (the transport seam) may fail with anything, even undefined.
    catchError((error: unknown) => throwError(() => asFailure(error, 'the socket could not be opened'))),
  );
}

function resolveSecure(secure: SecureListenOptions | undefined, rekeyInterval: number | undefined) {
  if (secure === undefined) return undefined;
  const retry = secure.retry ?? 'auto';
  if (retry !== 'auto' && retry !== 'always' && retry !== 'never') throw new InvalidOptionError('secure.retry', retry, "'auto', 'always' or 'never'");
  return {
    key: privateKeyFrom('secure.privateKey', secure.privateKey),
    required: secure.required ?? true,
    retry,
    ...(rekeyInterval === undefined ? {} : { rekeyInterval }),
  } as const;
}
