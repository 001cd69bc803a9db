import { first, map, merge, ignoreElements, take, tap, throwError, timeout, timer, type Observable, type SchedulerLike } from 'rxjs';
import { CloseReason, PacketType, type ClosePacket, type ConnectAckPacket, type ConnectPacket } from '../wire/packet';
import { ConnectionRefusedError, ConnectTimeoutError, type RudpError } from './errors';
import { errorForClose } from './close';

export interface HandshakeConfig {
  readonly connect: ConnectPacket;
  readonly deliveryTimeout: number;
  readonly connectTimeout: number;
  readonly scheduler: SchedulerLike;
  /** Sends the CONNECT (the same bytes every time). */
  readonly send: (packet: ConnectPacket) => void;
  readonly address: string;
  readonly port: number;
}

/**
 * The starter's side of the handshake (PROTOCOL.md §3): sends CONNECT now and every
 * `deliveryTimeout`, until the listener's replies (already filtered to its address, port and our
 * connection id) carry a CONNECT_ACK with our nonce. Emits that ack and completes; errors with
 * ConnectTimeoutError after `connectTimeout`, or with the reason of a CLOSE (refused, id in use).
 */
export function handshake(config: HandshakeConfig) {
  const { connect, deliveryTimeout, connectTimeout, scheduler, send } = config;
  return (replies$: Observable<ConnectAckPacket | ClosePacket>): Observable<ConnectAckPacket> => {
    const answer$ = replies$.pipe(
      first((p) => p.type === PacketType.Close || p.nonce === connect.nonce),
      map((p) => {
        if (p.type !== PacketType.Close) return p;
        if (p.reason === CloseReason.TooManyConnections || p.reason === CloseReason.ShuttingDown) throw refusal(p, config);
        throw new ConnectionIdRefused(p, refusal(p, config));
      }),
    );
    const retries$ = timer(0, deliveryTimeout, scheduler).pipe(
      tap(() => send(connect)),
      ignoreElements(),
    );
    return merge(answer$, retries$).pipe(
      take(1),
      timeout({
        first: connectTimeout,
        scheduler,
        with: () => throwError(() => new ConnectTimeoutError(config.address, config.port, connectTimeout)),
      }),
    );
  };
}

/** A CLOSE answered our CONNECT for a reason tied to its connection id; `error` is what to report if we give up. */
export class ConnectionIdRefused extends Error {
  constructor(
    readonly close: ClosePacket,
    readonly error: RudpError,
  ) {
    super(error.message);
  }
}

function refusal(close: ClosePacket, config: HandshakeConfig): RudpError {
  const context = `${config.address}:${config.port} refused the connection`;
  return errorForClose(close.reason, close.text, context) ?? new ConnectionRefusedError(`${context} (it closed the attempt at once, reason 0${close.text === '' ? '' : `: ${close.text}`})`);
}
