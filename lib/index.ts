/** rx-rudp: reliable messages over UDP, with RxJS streams. */
export { listen, type ListenOptions, type SecureListenOptions } from './api/listen';
export { connect, type ConnectOptions, type SecureConnectOptions } from './api/connect';
export type { ConnectAttempt } from './core/authorize';
export { generateKeyPair } from './api/keys';
export { open } from './api/open';
export type { Channel, ChannelOptions, Connection, ConnectionEvent, ConnectionState, CloseInfo, ReceiveOptions, RemoteAddress, SendOptions } from './core/connection';
export type { ConnectionStats, ConnectionCounters } from './core/stats';
export type { EndpointStats } from './core/endpoint';
export { DEFAULTS, type ProtocolOptions } from './core/options';
export type { Datagram, DatagramSocket, SocketAddress, SocketFactory, BindOptions } from './core/transport';
export {
  RudpError,
  ConnectTimeoutError,
  ConnectionTimeoutError,
  ConnectionRefusedError,
  ConnectionClosedError,
  ProtocolError,
  MessageTooLargeError,
  InvalidOptionError,
  SendBufferFullError,
  HandshakeError,
} from './core/errors';
export { ChannelsUnsupportedError, MessageExpiredError } from './core/channels/errors';
export { CloseReason } from './wire/packet';
export { realTimeScheduler } from './node/scheduler';
export { ReusePortUnsupportedError } from './node/reuse-port';
