import { decode, encode } from '../wire/codec';
import { isDecodeError, PacketType, type Packet } from '../wire/packet';
import { ConnectionClosedError } from './errors';
import type { Datagram, DatagramSocket } from './transport';

/** What an endpoint (listener or starter socket) counts before any connection sees a datagram. */
export interface EndpointStats {
  datagramsReceived: number;
  /** Not a valid packet by PROTOCOL.md (malformed, wrong version or type, too long). */
  invalidDatagrams: number;
  /** A valid packet for no live connection, or from an address other than the connection's peer. */
  strangerDatagrams: number;
  /** CONNECTs refused because `maxConnections` were open, or `maxMemory` had no room for another connection. */
  refusedConnections: number;
  /** Datagrams the socket failed to send. */
  sendErrors: number;
  /** Sealed datagrams that did not authenticate or were replays, and plain packets on a secure connection: dropped. */
  unauthenticatedDatagrams: number;
  /** CONNECTs whose secure handshake was not made for this listener's key (answered with CLOSE reason 16). */
  handshakeFailures: number;
  /** RETRY packets sent: CONNECTs asked to prove their address first (stateless). */
  retriesSent: number;
  /** Bytes a listener holds for its connections now (received and not consumed, or waiting to be sent), under `maxMemory`; 0 on a starter. */
  memoryInUse: number;
}

export function emptyEndpointStats(): EndpointStats {
  return { datagramsReceived: 0, invalidDatagrams: 0, strangerDatagrams: 0, refusedConnections: 0, sendErrors: 0, unauthenticatedDatagrams: 0, handshakeFailures: 0, retriesSent: 0, memoryInUse: 0 };
}

/** Decodes a datagram, counting it; undefined (and counted as invalid) when it is not a packet. */
export function decodeDatagram(datagram: Datagram, maxDatagramSize: number, stats: EndpointStats): Packet | undefined {
  stats.datagramsReceived++;
  const packet = decode(datagram.data, maxDatagramSize);
  if (isDecodeError(packet)) {
    stats.invalidDatagrams++;
    return undefined;
  }
  return packet;
}

/**
 * The packet inside a SEALED datagram of a secure connection, or undefined (counted): one that does
 * not open (forged, damaged, replayed), or that opens to something no open connection takes — a
 * broken peer's CONNECT or CONNECT_ACK, or bytes that are not a packet.
 */
export function decodeSealed(
  session: { open(sealed: Uint8Array): Uint8Array | undefined } | undefined,
  data: Uint8Array,
  maxDatagramSize: number,
  stats: EndpointStats,
): Packet | undefined {
  const plain = session?.open(data);
  if (plain === undefined) {
    stats.unauthenticatedDatagrams++;
    return undefined;
  }
  const packet = decode(plain, maxDatagramSize);
  if (isDecodeError(packet) || packet.type === PacketType.Connect || packet.type === PacketType.ConnectAck) {
    stats.invalidDatagrams++;
    return undefined;
  }
  return packet;
}

/**
 * A function that encodes a packet and sends it to one peer; returns the datagram's size.
 * Send failures are counted, then handed to `onFailure` (which decides whether they are fatal).
 */
export function transmitter(
  socket: DatagramSocket,
  address: string,
  port: number,
  stats: EndpointStats,
  onFailure?: (error: Error) => void,
  /** A secure connection's sealing: every packet leaves as SEALED. */
  sealer?: { sealPacket(packet: Packet): Uint8Array | undefined },
): (packet: Packet) => number {
  const onError = (error: Error): void => {
    stats.sendErrors++;
    onFailure?.(error);
  };
  if (sealer !== undefined) {
    return (packet) => {
      // The handshake's own packets are read before any key exists: never sealed.
      const bytes = packet.type === PacketType.Connect || packet.type === PacketType.ConnectAck ? encode(packet) : sealer.sealPacket(packet);
      if (bytes === undefined) return 0; // the counter is spent: the connection is ending
      socket.send(bytes, port, address, onError);
      return bytes.length;
    };
  }
  return (packet) => {
    const bytes = encode(packet);
    socket.send(bytes, port, address, onError);
    return bytes.length;
  };
}

/** A random, non-zero 32-bit value from a cryptographic source (connection ids, nonces). */
export function randomNonZero32(): number {
  const word = new Uint32Array(1);
  do globalThis.crypto.getRandomValues(word);
  while (word[0] === 0);
  return word[0]!;
}

/** A Node-style error code (`EMSGSIZE`, `ECONNREFUSED`, …), if the error has one. */
export function errorCode(error: Error): string | undefined {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/** EMSGSIZE: every DATA of this size would fail the same way, so the connection cannot go on. */
export function datagramTooLarge(error: Error, maxDatagramSize: number): ConnectionClosedError {
  return new ConnectionClosedError(
    `sending failed (${error.message}): datagrams of up to ${maxDatagramSize} bytes do not fit this path; lower maxDatagramSize (1200 is safe everywhere)`,
  );
}
