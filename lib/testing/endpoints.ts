import type { Observable } from 'rxjs';
import { connect as connectOverUdp, type ConnectOptions } from '../api/connect';
import { listen as listenOverUdp, type ListenOptions } from '../api/listen';
import { openFrom } from '../api/open';
import type { Connection } from '../core/connection';
import type { VirtualNetwork } from './virtual-network';

export interface VirtualListenOptions extends Omit<ListenOptions, 'socketFactory' | 'scheduler' | 'host'> {
  /** The listener's host on the virtual network, e.g. '10.0.0.2'. */
  readonly host: string;
}

export interface VirtualConnectOptions extends Omit<ConnectOptions, 'socketFactory' | 'scheduler'> {
  /** The starter's own host on the virtual network, e.g. '10.0.0.1'. */
  readonly from: string;
}

/** `listen` of the real protocol on a virtual network, in the network's (virtual) time. */
export function listen(network: VirtualNetwork, options: VirtualListenOptions): Observable<Connection> {
  return listenOverUdp({ ...options, scheduler: network.scheduler, socketFactory: network.socketFactory(options.host) });
}

/** `connect` of the real protocol on a virtual network, in the network's (virtual) time. */
export function connect(network: VirtualNetwork, options: VirtualConnectOptions): Observable<Connection> {
  const { from, ...rest } = options;
  return connectOverUdp({ ...rest, scheduler: network.scheduler, socketFactory: network.socketFactory(from) });
}

/** `open` of the real protocol on a virtual network: resolves with the open connection (see open() of rx-rudp). */
export function open(network: VirtualNetwork, options: VirtualConnectOptions): Promise<Connection> {
  try {
    return openFrom(connect(network, options));
  } catch (error) {
    return Promise.reject(error as Error); // an invalid option, as open() of rx-rudp
  }
}
