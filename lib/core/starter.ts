import { Observable, Subject, type SchedulerLike, type Subscription } from 'rxjs';
import { encode } from '../wire/codec';
import { CloseReason, PacketType, type ClosePacket, type ConnectAckPacket, type ConnectPacket, type ExtensionEntry } from '../wire/packet';
import { connectionIdOf, decodeRetry, encodeOffer, HANDSHAKE_FAILED_REASON, PATTERN_NK, RETRY_TYPE, SEALED_OVERHEAD, SEALED_TYPE, SECURE_EXTENSION_ID, typeOf } from '../wire/secure';
import { ConnectionCore } from './connection';
import { datagramTooLarge, decodeDatagram, decodeSealed, errorCode, randomNonZero32, transmitter, type EndpointStats } from './endpoint';
import { asFailure, describeFailure } from './close';
import { ConnectionClosedError, ConnectionRefusedError, ConnectTimeoutError, HandshakeError } from './errors';
import { makeOffer, readAnswer, type Extension } from './extensions';
import { endpointReceiveLimit, pathMtuExtensions, pathMtuParams } from './path-mtu/extension';
import { ConnectionIdRefused, handshake } from './handshake';
import type { ResolvedProtocolOptions } from './options';
import type { DatagramSocket } from './transport';
import { SECURE_CONNECT_MIN_SIZE } from './secure/listener-handshake';
import { NkInitiator } from './secure/noise-nk';
import { SecureSession } from './secure/session';

/** A starter's encryption settings (resolved from `connect({ secure })`). */
export interface SecureStarterConfig {
  /** The listener's static X25519 public key, raw 32 bytes. */
  readonly serverPublicKey: Uint8Array;
  /** Test hook: packets per key. */
  readonly rekeyInterval?: number;
}

/** RETRYs a starter follows per attempt: more means someone is playing with it. */
const MAX_RETRIES = 3;
/** CLOSE answers to a secure starter's CONNECTs it takes at their word (one could answer a CONNECT damaged on the way). */
const CLOSE_ANSWERS_BELIEVED = 3;

export interface StarterConfig {
  readonly address: string;
  readonly port: number;
  readonly options: ResolvedProtocolOptions;
  readonly scheduler: SchedulerLike;
  readonly stats: EndpointStats;
  /** The §12 extensions to offer (none by default: a version-1 CONNECT). */
  readonly extensions?: readonly Extension[];
  /** Require encryption (docs/protocol.md §13.1): never falls back to plain version 1. */
  readonly secure?: SecureStarterConfig;
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
    const onSendError = (error: Error): void => {
      const code = errorCode(error);
      if (code === 'EMSGSIZE') {
        const failure = datagramTooLarge(error, options.maxDatagramSize);
        if (connection !== undefined) {
          if (!connection.datagramRefused()) connection.fail(failure);
        }
        else subscriber.error(failure);
      } else if (code === 'ECONNREFUSED' && connection === undefined) {
        // ICMP port unreachable while connecting: nothing listens there (RFC 1122 treats it as
        // hard only before the connection is up; afterwards the pings decide).
        subscriber.error(new ConnectionRefusedError(`nothing is listening at ${address}:${port} (port unreachable); start the listener or check the port`));
      }
    };
    const send = transmitter(socket, address, port, stats, onSendError);
    const replies$ = new Subject<ConnectAckPacket | ClosePacket>();
    let connection: ConnectionCore | undefined;
    const genericOffer = makeOffer([...(config.extensions ?? []), ...pathMtuExtensions(options)]);
    const receiveLimit = endpointReceiveLimit(options);
    const secure = config.secure;
    /** This attempt's offer (the secure entry changes with the nonce) and, when secure, its handshake. */
    let offered: ExtensionEntry[] | undefined = genericOffer;
    let initiator: NkInitiator | undefined;
    let session: SecureSession | undefined;
    let retries = 0;
    let closeAnswers = 0;

    const fromListener = (datagram: { address: string; port: number }, id: number): boolean => {
      if (id === connectionId && datagram.address === address && datagram.port === port) return true;
      stats.strangerDatagrams++;
      return false;
    };

    /** A SEALED datagram: the listener's packets once open; nothing before (it cannot be ours yet). */
    const onSealed = (data: Uint8Array): void => {
      stats.datagramsReceived++;
      const packet = decodeSealed(connection === undefined ? undefined : session, data, receiveLimit, stats);
      if (packet !== undefined) connection!.ingest(packet, data.length);
    };

    /** The listener's secure answer: keys, or undefined (an answer that does not authenticate is dropped: anyone could have sent it). */
    const readSecureAnswer = (ack: ConnectAckPacket, bytes: Uint8Array): SecureSession | undefined => {
      const entry = ack.extensions?.find((e) => e.id === SECURE_EXTENSION_ID);
      if (entry === undefined || initiator === undefined) return undefined;
      const finished = initiator.finish(entry.params);
      if (finished === undefined || !finished.payload.equals(bytes.subarray(6, 14))) return undefined;
      return new SecureSession(finished.keys, secure?.rekeyInterval);
    };

    const datagrams = socket.datagrams$.subscribe({
      next: (datagram) => {
        const type = typeOf(datagram.data);
        if (type === SEALED_TYPE) {
          if (fromListener(datagram, connectionIdOf(datagram.data))) onSealed(datagram.data);
          return;
        }
        if (type === RETRY_TYPE) {
          stats.datagramsReceived++;
          const token = decodeRetry(datagram.data);
          if (token === undefined || secure === undefined || connection !== undefined || !fromListener(datagram, connectionIdOf(datagram.data))) {
            stats.invalidDatagrams++;
            return;
          }
          // The listener asks us to prove our address: the same CONNECT, with its token.
          if (retries++ >= MAX_RETRIES) return;
          handshaking.unsubscribe();
          handshaking = attempt(token);
          return;
        }
        const packet = decodeDatagram(datagram, receiveLimit, stats);
        if (packet === undefined) return;
        if (!fromListener(datagram, packet.connectionId)) return;
        // Read at the limit of path-mtu connections; the handshake's answers are held to the version-1 one (PROTOCOL.md §1).
        if (connection === undefined && datagram.data.length > options.maxDatagramSize) return void stats.invalidDatagrams++;
        if (connection !== undefined) {
          // On a secure connection a plain packet is a forgery: ignored.
          if (session !== undefined) stats.unauthenticatedDatagrams++;
          else connection.ingest(packet, datagram.data.length);
          return;
        }
        if (packet.type === PacketType.ConnectAck && readAnswer(offered, packet.extensions) === undefined) {
          stats.invalidDatagrams++; // §12: it accepts an extension we did not offer, or answers no offer
          return;
        }
        if (secure !== undefined && packet.type === PacketType.ConnectAck) {
          if (packet.nonce !== currentNonce) return;
          if (packet.extensions?.some((e) => e.id === SECURE_EXTENSION_ID) !== true) {
            // Plain version 1 answered: never fall back. Tell the listener why we leave.
            send({ type: PacketType.Close, connectionId, reason: CloseReason.ShuttingDown, text: 'encryption required' });
            handshaking.unsubscribe();
            return subscriber.error(
              new HandshakeError(`${address}:${port} answered without encryption: it runs without a key, or something on the path removed our offer; not connecting in the clear`),
            );
          }
          session = readSecureAnswer(packet, datagram.data);
          if (session === undefined) {
            stats.unauthenticatedDatagrams++;
            return;
          }
        }
        if (secure !== undefined && packet.type === PacketType.Close) {
          // A CLOSE answering CONNECT is not authenticated, and a damaged CONNECT draws one too:
          // believe it when the listener has said it to this many of our CONNECTs.
          if (++closeAnswers < CLOSE_ANSWERS_BELIEVED) return;
          if (packet.reason === HANDSHAKE_FAILED_REASON) {
            handshaking.unsubscribe();
            return subscriber.error(new HandshakeError(`${address}:${port} could not read our handshake: serverPublicKey is not that listener's key; check its .pub file`));
          }
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
    let currentNonce = 0;
    /** A CONNECT (a new nonce and handshake), or, with `token`, the current one again with the listener's token. */
    const attempt = (token?: Uint8Array): Subscription => {
      if (token === undefined) {
        currentNonce = randomNonZero32();
        if (secure !== undefined) {
          const fields: ConnectPacket = { type: PacketType.Connect, connectionId, maxDatagramSize: options.maxDatagramSize, receiveWindow: options.receiveWindow, nonce: currentNonce };
          // The handshake covers the CONNECT's fields: nobody can change them on the way.
          initiator = new NkInitiator(secure.serverPublicKey, encode(fields).subarray(0, 14));
        }
      }
      offered =
        initiator === undefined
          ? genericOffer
          : [{ id: SECURE_EXTENSION_ID, params: encodeOffer({ pattern: PATTERN_NK, message: initiator.message, ...(token === undefined ? {} : { token }) }) }, ...(genericOffer ?? [])];
      const connect: ConnectPacket = {
        type: PacketType.Connect,
        connectionId,
        maxDatagramSize: options.maxDatagramSize,
        receiveWindow: options.receiveWindow,
        nonce: currentNonce,
        ...(offered === undefined ? {} : { extensions: offered }),
        ...(secure === undefined ? {} : { paddedSize: SECURE_CONNECT_MIN_SIZE }),
      };
      // A second attempt (new id) gets what is left of connectTimeout.
      const connectTimeout = idRetried ? Math.max(0, options.connectTimeout - (scheduler.now() - startedAt)) : options.connectTimeout;
      return replies$.pipe(handshake({ connect, deliveryTimeout: options.deliveryTimeout, connectTimeout, scheduler, send: sendConnect, address, port })).subscribe({
        next: (ack) => {
          // Sealing costs each packet SEALED_OVERHEAD bytes of the datagram.
          const overhead = session === undefined ? 0 : SEALED_OVERHEAD;
          const negotiated = new Map(readAnswer(offered, ack.extensions)!);
          negotiated.delete(SECURE_EXTENSION_ID);
          connection = new ConnectionCore({
            id: connectionId,
            remote: { address, port },
            extensions: negotiated,
            options: overhead === 0 ? options : { ...options, maxDatagramSize: options.maxDatagramSize - overhead },
            scheduler,
            peerMaxDatagramSize: ack.maxDatagramSize - overhead,
            peerReceiveWindow: ack.receiveWindow,
            ...pathMtuParams(options, negotiated, true, address, overhead),
            transmit: session === undefined ? send : transmitter(socket, address, port, stats, onSendError, session),
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
          retries = 0;
          closeAnswers = 0;
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
