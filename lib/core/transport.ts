import type { Observable } from 'rxjs';

/** One received UDP datagram. */
export interface Datagram {
  readonly data: Uint8Array;
  readonly address: string;
  readonly port: number;
}

export interface SocketAddress {
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
}

/**
 * A bound datagram socket, as the protocol core sees it. The Node adapter implements it over
 * `node:dgram`; the testing kit over a virtual network in virtual time.
 */
export interface DatagramSocket {
  /** Datagrams as they arrive. Hot; errors when the socket fails; completes when it closes. */
  readonly datagrams$: Observable<Datagram>;
  /** Sends one datagram. Never throws: a failure is reported to `onError` (or dropped without one). */
  send(data: Uint8Array, port: number, address: string, onError?: (error: Error) => void): void;
  /** The bound local address (the real port when port 0 was asked). */
  address(): SocketAddress;
}

export interface BindOptions {
  readonly type: 'udp4' | 'udp6';
  /** Local address to bind; default all interfaces of the family. */
  readonly address?: string;
  /** Local port; 0 (the default) picks a free one. */
  readonly port?: number;
  /**
   * The one peer this socket talks to (a starter's listener). A transport MAY then filter other
   * sources and report the peer's unreachability (ICMP) as send errors; sends still name the peer.
   */
  readonly peer?: { readonly address: string; readonly port: number };
  /**
   * Share the port with other sockets that ask the same (SO_REUSEPORT): the kernel spreads
   * peers over them by source address and port. A transport that cannot MUST fail the bind.
   */
  readonly reusePort?: boolean;
}

/**
 * Opens a socket. Subscribing binds it and emits it once bound (errors if binding fails);
 * unsubscribing closes it. The injectable seam for transports.
 */
export type SocketFactory = (options: BindOptions) => Observable<DatagramSocket>;
