import { CloseReason } from '../wire/packet';
import {
  ConnectionClosedError,
  ConnectionRefusedError,
  ConnectionTimeoutError,
  MessageTooLargeError,
  ProtocolError,
  type RudpError,
} from './errors';

/**
 * What a stream reports when `value` ended something: `value` itself when it is an Error, and
 * otherwise (a transport that failed with `undefined`, a string, …) a ConnectionClosedError
 * saying `what` failed, so that no stream of the library ever errors with `undefined`.
 */
export function asFailure(value: unknown, what: string): Error {
  if (value instanceof Error) return value;
  return new ConnectionClosedError(`${what}: ${describeFailure(value)}`);
}

/** A failure's words for a message: an Error's message, or what else it is ("no reason given" for undefined). */
export function describeFailure(value: unknown): string {
  if (value instanceof Error) return value.message;
  if (value === undefined || value === null) return 'no reason given';
  return String(value);
}

/** The error a side reports when its peer closes with `reason` (PROTOCOL.md §8); undefined for a normal close. */
export function errorForClose(reason: number, text: string, context = 'peer closed the connection'): RudpError | undefined {
  const said = text === '' ? '' : `: ${text}`;
  switch (reason) {
    case CloseReason.Normal:
      return undefined;
    case CloseReason.Timeout:
      return new ConnectionTimeoutError(0, `${context} because it timed out waiting for us${said}`);
    case CloseReason.MessageTooLarge:
      return new MessageTooLargeError(`${context}: a message we sent exceeds its maxMessageSize${said}; send smaller messages or raise the peer's limit`);
    case CloseReason.ShuttingDown:
      return new ConnectionClosedError(`${context}: it is shutting down${said}; reconnect later`, reason);
    case CloseReason.TooManyConnections:
      return new ConnectionRefusedError(`${context}: it has too many connections${said}; retry later or raise its maxConnections`);
    case CloseReason.ProtocolError:
      return new ProtocolError(`${context} with a protocol error${said}`);
    default:
      return new ProtocolError(`${context} with unknown reason ${reason}${said}`);
  }
}
