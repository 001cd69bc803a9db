/**
 * rx-rudp/testing: a virtual UDP network in (virtual) scheduler time, for deterministic tests.
 */
export { VirtualNetwork } from './virtual-network';
export type {
  Endpoint,
  LinkImpairment,
  LinkStats,
  NetworkStats,
  TrafficCounters,
  TrafficEvent,
  TrafficFate,
  VirtualNetworkError,
  VirtualNetworkOptions,
  WireDatagram,
} from './virtual-network';
export { Random, deriveSeed, mulberry32 } from './random';
export { listen, connect, open, type VirtualListenOptions, type VirtualConnectOptions } from './endpoints';
