/** The Node.js adapter: UDP sockets over `node:dgram` and the real-time scheduler. */
export { udpSocketFactory } from './udp-socket';
export { realTimeScheduler } from './scheduler';
