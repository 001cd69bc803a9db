import { Observable, Subject, type SchedulerLike, type Subscription } from 'rxjs';
import { CloseReason, PacketType, type ClosePacket, type ConnectAckPacket, type ConnectPacket } from '../wire/packet';
import { ConnectionCore } from './connection';
import { datagramTooLarge, decodeDatagram, errorCode, randomNonZero32, transmitter, type EndpointStats } from './endpoint';
import { asFailure, describeFailure } from './close';
import { ConnectionClosedError, ConnectionRefusedError, ConnectTimeoutError } from './errors';
import { makeOffer, readAnswer, type Extension } from './extensions';
import { ConnectionIdRefused, handshake } from './handshake';
import type { ResolvedProtocolOptions } from './options';
import type { DatagramSocket } from './transport';

export interface StarterConfig {
  readonly address: string;
  readonly port: number;
  readonly options: ResolvedProtocolOptions;
  readonly scheduler: SchedulerLike;
  readonly stats: EndpointStats;
  /** The §12 extensions to offer (none by default: a version-1 CONNECT). */
  readonly extensions?: readonly Extension[];
  /** Test hooks: fixed connection id, first seq/batch. */
  readonly connectionId?: number;
  readonly initialSeq?: number;
  readonly initialBatch?: number;
}

/**
 * Why a starter's connection closed when its subscription ended while it was open: the text of
 * its CLOSE (the peer sees it too) and of what a later send() fails with. The usual cause is an
 * async/await caller that took the connection out of the subscription.
 */
export const SUBSCRIPTION_ENDED = 'the connect() subscription ended (firstValueFrom or take(1) end it): keep the subscription, or use open()';

/**
 * The starter's side: handshakes with the listener at (address, port) over `socket`, then routes
 * the listener's packets to the one connection. Emits the connection once open; completes when it
 * closes normally (reason 0, either side) and errors with the connection's typed error when it
 * ends abnormally. Unsubscribing earlier closes it (CLOSE reason 0, text SUBSCRIPTION_ENDED).
 */
export function openConnection(socket: DatagramSocket, config: StarterConfig): Observable<ConnectionCore> {
  const { address, port, options, scheduler, stats } = config;
  return new Observable<ConnectionCore>((subscriber) => {
    let connectionId = config.connectionId ?? randomNonZero32();
    const send = transmitter(socket, address, port, stats, (error) => {
      const code = errorCode(error);
      if (code === 'EMSGSIZE') {
        const failure = datagramTooLarge(error, options.maxDatagramSize);
        if (connection !== undefined) connection.fail(failure);
        else subscriber.error(failure);
      } else if (code === 'ECONNREFUSED' && connection === undefined) {
        // ICMP port unreachable while connecting: nothing listens there (RFC 1122 treats it as
        // hard only before the connection is up; afterwards the pings decide).
        subscriber.error(new ConnectionRefusedError(`nothing is listening at ${address}:${port} (port unreachable); start the listener or check the port`));
      }
    });
    const replies$ = new Subject<ConnectAckPacket | ClosePacket>();
    let connection: ConnectionCore | undefined;
    const offer = makeOffer(config.extensions ?? []);

    const datagrams = socket.datagrams$.subscribe({
      next: (datagram) => {
        const packet = decodeDatagram(datagram, options.maxDatagramSize, stats);
        if (packet === undefined) return;
        if (packet.connectionId !== connectionId || datagram.address !== address || datagram.port !== port) {
          stats.strangerDatagrams++;
          return;
        }
        if (connection !== undefined) return connection.ingest(packet, datagram.data.length);
        if (packet.type === PacketType.ConnectAck && readAnswer(offer, packet.extensions) === undefined) {
          stats.invalidDatagrams++; // §12: it accepts an extension we did not offer, or answers no offer
          return;
        }
        if (packet.type === PacketType.ConnectAck || packet.type === PacketType.Close) replies$.next(packet);
      },
      error: (error: unknown) => {
        const failure = new ConnectionClosedError(`socket failed: ${describeFailure(error)}`);
        if (connection !== undefined) connection.fail(failure);
        else subscriber.error(failure);
      },
    });

    const startedAt = scheduler.now();
    let firstConnectAt: number | undefined;
    let connectsSent = 0;
    const sendConnect = (packet: ConnectPacket): number => {
      if (connectsSent++ === 0) firstConnectAt = scheduler.now();
      return send(packet);
    };
    let idRetried = false;
    const attempt = (): Subscription => {
      const connect: ConnectPacket = {
        type: PacketType.Connect,
        connectionId,
        maxDatagramSize: options.maxDatagramSize,
        receiveWindow: options.receiveWindow,
        nonce: randomNonZero32(),
        ...(offer === undefined ? {} : { extensions: offer }),
      };
      // A second attempt (new id) gets what is left of connectTimeout.
      const connectTimeout = idRetried ? Math.max(0, options.connectTimeout - (scheduler.now() - startedAt)) : options.connectTimeout;
      return replies$.pipe(handshake({ connect, deliveryTimeout: options.deliveryTimeout, connectTimeout, scheduler, send: sendConnect, address, port })).subscribe({
        next: (ack) => {
          connection = new ConnectionCore({
            id: connectionId,
            remote: { address, port },
            extensions: readAnswer(offer, ack.extensions)!,
            options,
            scheduler,
            peerMaxDatagramSize: ack.maxDatagramSize,
            peerReceiveWindow: ack.receiveWindow,
            transmit: send,
            onClosed: (info) => (info.error === undefined ? subscriber.complete() : subscriber.error(info.error)),
            ...(config.initialSeq === undefined ? {} : { initialSeq: config.initialSeq }),
            ...(config.initialBatch === undefined ? {} : { initialBatch: config.initialBatch }),
          });
          // Karn: a sample only when the first CONNECT of the only attempt was the one answered.
          connection.greet(!idRetried && connectsSent === 1 && firstConnectAt !== undefined ? scheduler.now() - firstConnectAt : undefined);
          subscriber.next(connection);
        },
        error: (error: unknown) => {
          if (error instanceof ConnectTimeoutError) return subscriber.error(new ConnectTimeoutError(address, port, options.connectTimeout));
          if (!(error instanceof ConnectionIdRefused)) return subscriber.error(asFailure(error, 'the handshake failed'));
          // PROTOCOL.md §3: the id lingers there (or another starter has it): pick a new one, once.
          if (idRetried || config.connectionId !== undefined) return subscriber.error(error.error);
          idRetried = true;
          connectionId = randomNonZero32();
          handshaking = attempt();
        },
      });
    };
    let handshaking = attempt();

    return () => {
      handshaking.unsubscribe();
      // A no-op when the connection has already ended (it ended the subscription).
      connection?.abort(CloseReason.Normal, SUBSCRIPTION_ENDED, undefined);
      datagrams.unsubscribe();
    };
  });
}

