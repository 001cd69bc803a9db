import { createSocket, type RemoteInfo, type Socket, type SocketOptions } from 'node:dgram';
import { types } from 'node:util';
import { Observable, Subject } from 'rxjs';
import { RudpError } from '../core/errors';
import type { BindOptions, Datagram, DatagramSocket, SocketAddress, SocketFactory } from '../core/transport';
import { ReusePortUnsupportedError, reusePortUnavailable } from './reuse-port';

/**
 * The Node.js UDP adapter: the only code of the project that touches `node:dgram`.
 *
 * Subscribing creates and binds a socket, emits it once listening (errors if binding fails);
 * unsubscribing closes it. Nothing else (no timer, no extra handle) keeps the process alive.
 */

/** Requested kernel buffer size; the kernel may cap it (Linux: net.core.rmem_max / wmem_max). */
const SOCKET_BUFFER_SIZE = 4 * 1024 * 1024;

export const udpSocketFactory: SocketFactory = (options: BindOptions) =>
  new Observable<DatagramSocket>((subscriber) => {
    const port = options.port ?? 0;
    const address = options.address;
    const reusePort = options.reusePort === true;
    const unavailable = reusePort ? reusePortUnavailable() : undefined;
    if (unavailable !== undefined) {
      subscriber.error(new ReusePortUnsupportedError(unavailable));
      return;
    }
    // ipv6Only stays false (the default): a udp6 socket bound to `::` also serves IPv4-mapped peers.
    // reusePort is not in @types/node 20's SocketOptions; Node 22.12+ reads it (checked above).
    const socket = createSocket(reusePort ? ({ type: options.type, reusePort: true } as SocketOptions) : { type: options.type });
    const datagrams = new Subject<Datagram>();
    let bound = false;
    let closed = false;
    // Node sends asynchronously (address lookup first): closing at once would drop the last
    // datagrams, such as the CLOSE a connection sends as it ends. Close after they have gone.
    let pendingSends = 0;
    const sent = (): void => {
      if (--pendingSends === 0 && closed) closeSocket(socket);
    };
    // One completion callback per error handler (a connection has one), not a closure per
    // datagram; weakly held, so a closed connection's handler is not kept alive.
    const completions = new WeakMap<(error: Error) => void, (error: Error | null) => void>();
    const sentOnly = (): void => sent();
    const completion = (onError: ((error: Error) => void) | undefined): ((error: Error | null) => void) => {
      if (onError === undefined) return sentOnly;
      let callback = completions.get(onError);
      if (callback === undefined) {
        callback = (error) => {
          if (error) onError(error);
          sent();
        };
        completions.set(onError, callback);
      }
      return callback;
    };

    socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => {
      if (closed) return;
      // The Buffer as Node hands it over (a fresh one per datagram): no copy.
      datagrams.next({ data: msg, address: rinfo.address, port: rinfo.port });
    });

    // Always listening for 'error', so a socket failure never becomes an uncaught exception.
    socket.on('error', (error: Error) => {
      if (closed) return;
      if (!bound) subscriber.error(bindError(options.type, address, port, reusePort, error));
      // On a connected socket the kernel reports ICMP port unreachable on receive: it concerns
      // the peer, not the socket, so it goes where send errors go.
      else if (peer !== undefined && (error as NodeJS.ErrnoException).code === 'ECONNREFUSED') lastOnError?.(error);
      else datagrams.error(error);
    });

    // A starter's socket is connected to its one peer: the kernel then drops other sources, sends
    // skip the per-datagram address lookup, and ICMP port unreachable comes back as ECONNREFUSED.
    const peer = options.peer;
    let lastOnError: ((error: Error) => void) | undefined;
    const ready = (): void => {
      if (closed) return;
      bound = true;
      trySetBufferSizes(socket);
      const local = toSocketAddress(socket, options.type);
      subscriber.next({
        datagrams$: datagrams.asObservable(),
        send: (data, toPort, toAddress, onError) => {
          lastOnError = onError;
          if (send(socket, data, peer === undefined ? toPort : undefined, toAddress, onError, completion(onError))) pendingSends++;
        },
        address: () => local,
      });
    };
    socket.once('listening', () => {
      if (closed) return;
      if (peer === undefined) return ready();
      try {
        socket.connect(peer.port, peer.address, ready);
      } catch (error) {
        subscriber.error(bindError(options.type, address, port, reusePort, toError(error)));
      }
    });

    try {
      // exclusive: the socket is never shared with node:cluster workers; each one has its own
      // state. Sharing a port is reusePort's job: each socket of the group is its own.
      socket.bind(address === undefined ? { port, exclusive: true } : { port, address, exclusive: true });
    } catch (error) {
      // Synchronous failures (invalid port, …) are reported like asynchronous ones.
      subscriber.error(bindError(options.type, address, port, reusePort, toError(error)));
    }

    return () => {
      if (closed) return;
      closed = true;
      if (pendingSends === 0) closeSocket(socket);
      datagrams.complete();
    };
  });

function closeSocket(socket: Socket): void {
  try {
    socket.close();
  } catch {
    // Already closed (ERR_SOCKET_DGRAM_NOT_RUNNING): nothing to release.
  }
}

/** Returns true when the send is under way (its callback will run). */
function send(
  socket: Socket,
  data: Uint8Array,
  port: number | undefined,
  address: string,
  onError: ((error: Error) => void) | undefined,
  callback: (error: Error | null) => void,
): boolean {
  try {
    if (port === undefined) socket.send(data, callback);
    else socket.send(data, port, address, callback);
    return true;
  } catch (error) {
    // Closed socket (ERR_SOCKET_DGRAM_NOT_RUNNING), invalid port, …: reported, never thrown.
    // Deferred, so `onError` is always called asynchronously, as for failures of the send itself.
    if (onError) {
      const reported = toError(error);
      queueMicrotask(() => onError(reported));
    }
    return false;
  }
}

function trySetBufferSizes(socket: Socket): void {
  try {
    socket.setRecvBufferSize(SOCKET_BUFFER_SIZE);
  } catch {
    // Refused or capped by the kernel: the default size works, just with less burst headroom.
  }
  try {
    socket.setSendBufferSize(SOCKET_BUFFER_SIZE);
  } catch {
    // Same as above.
  }
}

function toSocketAddress(socket: Socket, type: BindOptions['type']): SocketAddress {
  const info = socket.address();
  const family: SocketAddress['family'] =
    info.family === 'IPv6' || info.family === 'IPv4' ? info.family : type === 'udp6' ? 'IPv6' : 'IPv4';
  return { address: info.address, port: info.port, family };
}

function bindError(type: BindOptions['type'], address: string | undefined, port: number, reusePort: boolean, cause: Error): RudpError {
  const where = `${formatHost(address ?? (type === 'udp6' ? '::' : '0.0.0.0'))}:${port}`;
  const code = (cause as NodeJS.ErrnoException).code;
  let hint: string;
  switch (code) {
    case 'EADDRINUSE':
      hint = reusePort
        ? `port ${port} is held by a socket that does not share it (or by another user): stop that process, or choose another port`
        : `port ${port} is already in use on that address: stop the other process, choose another port, or use port 0 to let the system pick a free one`;
      break;
    case 'EACCES':
    case 'EPERM':
      hint = `permission denied: ports below 1024 need privileges; choose a port of 1024 or above, or 0`;
      break;
    case 'EADDRNOTAVAIL':
      hint = `the address is not assigned to any interface of this host: bind to a local address, or omit it to bind all interfaces`;
      break;
    case 'EAFNOSUPPORT':
      hint = `the address family is not supported here: use ${type === 'udp6' ? "type 'udp4'" : "type 'udp6'"} or check the address`;
      break;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      hint = `the address could not be resolved: give a numeric ${type === 'udp6' ? 'IPv6' : 'IPv4'} address of this host`;
      break;
    default:
      hint = `check the address and port`;
  }
  return new RudpError(`cannot bind ${type} socket to ${where} (${code ?? cause.message}): ${hint}`, { cause });
}

function formatHost(address: string): string {
  return address.includes(':') ? `[${address}]` : address;
}

/** Keeps errors as they are (with their `code`), also those of another realm (jest's vm sandbox). */
function toError(value: unknown): Error {
  return value instanceof Error || types.isNativeError(value) ? value : new Error(String(value));
}
