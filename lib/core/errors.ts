/**
 * Typed errors. Each message says what happened and what to do, so it can be shown to a user as is.
 */

export class RudpError extends Error {
  override name = 'RudpError';
}

/** The listener did not answer CONNECT within `connectTimeout`. */
export class ConnectTimeoutError extends RudpError {
  override name = 'ConnectTimeoutError';
  constructor(readonly address: string, readonly port: number, readonly timeoutMs: number) {
    super(
      `no answer from ${address}:${port} within ${timeoutMs} ms: check that a listener runs there ` +
        `and that UDP is not blocked, or raise connectTimeout`,
    );
  }
}

/** The peer stopped answering: nothing valid arrived for (`pingPacketCount` + 1) × `pingInterval`, or the peer said it timed out. */
export class ConnectionTimeoutError extends RudpError {
  override name = 'ConnectionTimeoutError';
  constructor(readonly silentMs: number, detail?: string) {
    super(
      detail ??
        `peer silent for ${silentMs} ms (no answer to pings): the peer process or the network path is gone; ` +
          `reconnect, or raise pingInterval/pingPacketCount for slower links`,
    );
  }
}

/** The peer broke the protocol, or closed with reason 2 or an unknown reason. */
export class ProtocolError extends RudpError {
  override name = 'ProtocolError';
}

/** A message exceeded `maxMessageSize` (ours when receiving, the peer's when it closed with reason 3). */
export class MessageTooLargeError extends RudpError {
  override name = 'MessageTooLargeError';
}

/** The listener refused the connection (CLOSE reason 5: too many connections). */
export class ConnectionRefusedError extends RudpError {
  override name = 'ConnectionRefusedError';
}

/** The connection ended abnormally for another reason (peer shutting down, socket error, closed while sending). */
export class ConnectionClosedError extends RudpError {
  override name = 'ConnectionClosedError';
  constructor(message: string, readonly reason?: number) {
    super(message);
  }
}

/** An option had a value outside its documented range. */
export class InvalidOptionError extends RudpError {
  override name = 'InvalidOptionError';
  constructor(readonly option: string, value: unknown, expected: string) {
    super(`option ${option} = ${String(value)} is invalid: expected ${expected}`);
  }
}

/** A message did not fit in the send buffer (`maxBufferedBytes`): wait for `bufferedBytes$` to drop, or raise the bound. */
export class SendBufferFullError extends RudpError {
  override name = 'SendBufferFullError';
}

/**
 * The secure handshake failed: the listener could not read our handshake (a wrong
 * `serverPublicKey`), it answered without encryption, or it refused encryption we require.
 */
export class HandshakeError extends RudpError {
  override name = 'HandshakeError';
}
