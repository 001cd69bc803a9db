import { first, map, merge, ignoreElements, take, tap, throwError, timeout, timer, type Observable, type SchedulerLike } from 'rxjs';
import { PacketType, type ClosePacket, type ConnectAckPacket, type ConnectPacket } from '../wire/packet';
import { ConnectTimeoutError } from './errors';
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
        if (p.type === PacketType.Close) throw errorForClose(p.reason, p.text, `${config.address}:${config.port} refused the connection`);
        return p;
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
