import { Observable, type SchedulerLike, type Subscription } from 'rxjs';
import { askAuthorize, type Authorize } from './authorize';
import { CloseReason, PacketType, type ConnectAckPacket, type ConnectPacket, type Packet } from '../wire/packet';
import { ConnectionCore } from './connection';
import { Deadline } from './deadline';
import { datagramTooLarge, decodeDatagram, decodeSealed, errorCode, transmitter, type EndpointStats } from './endpoint';
import { asFailure, describeFailure } from './close';
import { ConnectionClosedError } from './errors';
import { answerOffer, type Extension } from './extensions';
import { endpointReceiveLimit, pathMtuExtensions, pathMtuParams } from './path-mtu/extension';
import { MemoryAccount, MemoryBudget } from './memory-budget';
import { HandshakeRate, readSecureConnect, type SecureListenerConfig } from './secure/listener-handshake';
import { RetryTokens } from './secure/retry-token';
import type { SecureSession } from './secure/session';
import { connectionIdOf, HANDSHAKE_MESSAGE_2_SIZE, SEALED_OVERHEAD, SEALED_TYPE, SECURE_EXTENSION_ID, typeOf } from '../wire/secure';
import { EXTENSION_ENTRY_HEADER_SIZE } from '../wire/extensions';
import { encode } from '../wire/codec';
import type { ResolvedProtocolOptions } from './options';
import type { Datagram, DatagramSocket } from './transport';

export interface ListenerConfig {
  readonly options: ResolvedProtocolOptions;
  readonly maxConnections: number;
  /** Bytes of messages held for all connections at most (received, reassembling, waiting to be consumed or acknowledged). */
  readonly maxMemory: number;
  readonly scheduler: SchedulerLike;
  readonly stats: EndpointStats;
  /** The §12 extensions this listener supports (none by default). */
  readonly extensions?: readonly Extension[];
  /** Encryption (docs/protocol.md §13.1); absent: plain version 1 only (offers of it are declined). */
  readonly secure?: SecureListenerConfig;
  /** Decides each new connection attempt; a refusal is answered with CLOSE reason 5, "not authorized". */
  readonly authorize?: Authorize;
  /** Test hook: first seq/batch of every connection. */
  readonly initialSeq?: number;
  readonly initialBatch?: number;
}

interface Live {
  readonly address: string;
  readonly port: number;
  readonly connection: ConnectionCore;
  /** The CONNECT_ACK it was answered with: a resent CONNECT gets the same answer. */
  readonly ack: ConnectAckPacket;
  /** Its packets are sealed: plain ones are forgeries. */
  readonly session: SecureSession | undefined;
  /** Nothing but CONNECTs came from the starter's address yet. */
  halfOpen: boolean;
}

/** A connection closed recently: packets for it are answered with CLOSE (PROTOCOL.md §8). */
interface Lingering {
  readonly address: string;
  readonly port: number;
  readonly reason: number;
  readonly until: number;
  lastCloseSentAt: number;
  /** A secure connection's CLOSE is sealed too: its peer ignores plain ones. */
  readonly session: SecureSession | undefined;
}

const CLOSE_REPEAT_INTERVAL_MS = 1000;

/** What a message start may claim at most (PROTOCOL.md §4: count × payload, within maxMessageSize + one payload): the reserve for in-order progress. */
export function largestClaim(options: ResolvedProtocolOptions): number {
  return options.maxMessageSize + options.maxDatagramSize;
}

/** The least `maxMemory` that works: the reserve, and one receive window for everything else. */
export function smallestMaxMemory(options: ResolvedProtocolOptions): number {
  return largestClaim(options) + options.receiveWindow * options.maxDatagramSize;
}
/** A CLOSE with no text, as the linger answers send it. */
const CLOSE_ANSWER_SIZE = 7;
/** The secure entry of a CONNECT_ACK: id, length, Noise's second message. */
const SECURE_ANSWER_ENTRY_SIZE = EXTENSION_ENTRY_HEADER_SIZE + HANDSHAKE_MESSAGE_2_SIZE;

/** `text` cut so that a CLOSE carrying it is no longer than the datagram it answers. */
function fitText(text: string, triggerSize: number): string {
  const room = Math.max(0, Math.min(triggerSize, 64) - CLOSE_ANSWER_SIZE);
  return Buffer.byteLength(text) <= room ? text : Buffer.from(text).subarray(0, room).toString();
}

/**
 * The listener's side (PROTOCOL.md §3, §8): demultiplexes one socket's datagrams by
 * (address, port, connectionId), accepts CONNECTs into new connections (emitted), answers
 * duplicates, refuses beyond `maxConnections`, and remembers closed connections for the linger
 * period. Unsubscribing closes every connection with reason 4 (shutting down).
 */
export function acceptConnections(socket: DatagramSocket, config: ListenerConfig): Observable<ConnectionCore> {
  const { options, scheduler, stats } = config;
  const lingerMs = options.pingInterval * options.pingPacketCount;
  return new Observable<ConnectionCore>((subscriber) => {
    const live = new Map<number, Live>();
    let halfOpen = 0;
    const tokens = new RetryTokens();
    const handshakes = new HandshakeRate();
    /** Attempts waiting for an asynchronous `authorize`, by id: duplicates of their CONNECT are ignored meanwhile. */
    const deciding = new Map<number, Subscription>();
    const memory = new MemoryBudget(config.maxMemory, largestClaim(options), (used) => (stats.memoryInUse = used));
    const extensions = [...(config.extensions ?? []), ...pathMtuExtensions(options)];
    const receiveLimit = endpointReceiveLimit(options);
    // A new connection needs room for at least one receive window beside the reserve.
    const roomForConnection = options.receiveWindow * options.maxDatagramSize;
    // Set by the teardown: a connection that finishes closing afterwards (an application that
    // unsubscribed from inside a close callback) must not re-arm the linger table.
    let stopped = false;
    const lingering = new Map<number, Lingering>();
    const sweeper = new Deadline(scheduler, (now) => {
      for (const [id, entry] of lingering) {
        if (entry.until > now) {
          sweeper.set(entry.until);
          return;
        }
        lingering.delete(id);
      }
    });

    const reply = (packet: Packet, address: string, port: number): void => {
      transmitter(socket, address, port, stats)(packet);
    };

    const refuse = (id: number, reason: number, text: string, address: string, port: number, triggerSize: number): void => {
      stats.refusedConnections++;
      reply({ type: PacketType.Close, connectionId: id, reason, text: fitText(text, triggerSize) }, address, port);
    };

    const accept = (connect: ConnectPacket, bytes: Uint8Array, address: string, port: number): void => {
      const id = connect.connectionId;
      const size = bytes.length;
      if (deciding.has(id)) return;
      const existing = live.get(id);
      if (existing !== undefined) {
        if (existing.address === address && existing.port === port) return existing.connection.answerConnect({ ...existing.ack, nonce: connect.nonce }, size);
        // Another peer picked the same id: it must choose a new one.
        return reply({ type: PacketType.Close, connectionId: id, reason: CloseReason.ProtocolError, text: 'connection id in use' }, address, port);
      }
      const closed = lingering.get(id);
      if (closed !== undefined && closed.address === address && closed.port === port) return answerClosed(id, closed, size);
      if (live.size + deciding.size >= config.maxConnections) return refuse(id, CloseReason.TooManyConnections, 'too many connections', address, port, size);
      if (memory.sharedFree < roomForConnection) return refuse(id, CloseReason.TooManyConnections, 'listener memory full', address, port, size);
      let secure: Extract<ReturnType<typeof readSecureConnect>, { kind: 'secure' }> | undefined;
      if (config.secure !== undefined) {
        const now = scheduler.now();
        const decision = readSecureConnect(config.secure, tokens, connect, bytes, { address, port, now, halfOpen, recentHandshakes: handshakes.inSecond(now) });
        if (decision.kind === 'secure' || (decision.kind === 'refuse' && decision.reason !== CloseReason.TooManyConnections)) handshakes.count++;
        switch (decision.kind) {
          case 'drop':
            stats.invalidDatagrams++;
            return;
          case 'refuse':
            if (decision.reason !== CloseReason.TooManyConnections) stats.handshakeFailures++;
            return refuse(id, decision.reason, decision.text, address, port, size);
          case 'retry':
            stats.retriesSent++;
            return socket.send(decision.datagram, port, address, () => void stats.sendErrors++);
          case 'secure':
            secure = decision;
        }
      }
      if (config.authorize === undefined) return create(connect, size, address, port, secure);
      // Nothing is kept for the attempt until the answer comes; resent CONNECTs meanwhile ask nothing again.
      const pending = askAuthorize(config.authorize, { address, port, secure: secure !== undefined }, (allowed) => {
        deciding.delete(id);
        if (allowed) create(connect, size, address, port, secure);
        else refuse(id, CloseReason.TooManyConnections, 'not authorized', address, port, size);
      });
      if (pending !== undefined) deciding.set(id, pending);
    };

    const create = (connect: ConnectPacket, size: number, address: string, port: number, secure: Extract<ReturnType<typeof readSecureConnect>, { kind: 'secure' }> | undefined): void => {
      if (stopped) return;
      const id = connect.connectionId;
      const offered = secure === undefined ? connect.extensions : connect.extensions?.filter((e) => e.id !== SECURE_EXTENSION_ID);
      // The secure answer comes first and always fits (its CONNECT is at least 128 bytes); the others share what is left.
      const secureAnswerSize = secure === undefined ? 0 : SECURE_ANSWER_ENTRY_SIZE;
      const { answer, negotiated } = answerOffer(extensions, offered, size - secureAnswerSize);
      const ackBody: Omit<ConnectAckPacket, 'extensions'> = {
        type: PacketType.ConnectAck,
        connectionId: id,
        maxDatagramSize: options.maxDatagramSize,
        receiveWindow: options.receiveWindow,
        nonce: connect.nonce,
      };
      const sealed = secure?.answer(encode(ackBody).subarray(6, 14));
      const entries = sealed === undefined ? answer : [sealed.entry, ...answer];
      const ack: ConnectAckPacket = { ...ackBody, ...(entries.length > 0 ? { extensions: entries } : {}) };
      const session = sealed?.session;
      const validated = secure?.validated === true;
      // Sealing costs each packet SEALED_OVERHEAD bytes of the datagram.
      const overhead = session === undefined ? 0 : SEALED_OVERHEAD;
      const connection = new ConnectionCore({
        id,
        remote: { address, port },
        extensions: negotiated,
        options: overhead === 0 ? options : { ...options, maxDatagramSize: options.maxDatagramSize - overhead },
        scheduler,
        peerMaxDatagramSize: connect.maxDatagramSize - overhead,
        peerReceiveWindow: connect.receiveWindow,
        peerValidated: validated,
        ...pathMtuParams(options, negotiated, false, address, overhead),
        memory: new MemoryAccount(memory),
        transmit: transmitter(
          socket,
          address,
          port,
          stats,
          (error) => {
            if (errorCode(error) === 'EMSGSIZE' && !connection.datagramRefused()) connection.fail(datagramTooLarge(error, options.maxDatagramSize));
          },
          session,
        ),
        onClosed: (info) => {
          const entry = live.get(id);
          if (entry?.halfOpen === true) halfOpen--;
          live.delete(id);
          if (stopped) return;
          const until = scheduler.now() + lingerMs;
          // Delete first: a Map keeps a re-set key in its old place, and the sweeper relies on insertion order being time order.
          lingering.delete(id);
          lingering.set(id, { address, port, reason: info.reason, until, lastCloseSentAt: info.byPeer ? -Infinity : scheduler.now(), session });
          sweeper.setIfEarlier(until);
        },
        ...(config.initialSeq === undefined ? {} : { initialSeq: config.initialSeq }),
        ...(config.initialBatch === undefined ? {} : { initialBatch: config.initialBatch }),
      });
      // No separate half-open timer: within the §3 budget the connection pings a silent starter
      // like any idle peer, and the ordinary ping timeout ends one that never answers.
      live.set(id, { address, port, connection, ack, session, halfOpen: !validated });
      if (!validated) halfOpen++;
      connection.answerConnect(ack, size);
      subscriber.next(connection);
    };

    const answerClosed = (id: number, closed: Lingering, triggerSize: number): void => {
      if (triggerSize < CLOSE_ANSWER_SIZE) return; // never answer with more bytes than were received
      const now = scheduler.now();
      if (now - closed.lastCloseSentAt < CLOSE_REPEAT_INTERVAL_MS) return;
      closed.lastCloseSentAt = now;
      const close: Packet = { type: PacketType.Close, connectionId: id, reason: closed.reason, text: '' };
      if (closed.session === undefined) return reply(close, closed.address, closed.port);
      transmitter(socket, closed.address, closed.port, stats, undefined, closed.session)(close);
    };

    const onDatagram = (datagram: Datagram): void => {
      if (typeOf(datagram.data) === SEALED_TYPE) return onSealed(datagram);
      const packet = decodeDatagram(datagram, receiveLimit, stats);
      if (packet === undefined) return;
      if (packet.type === PacketType.Connect) {
        // Read at the limit of path-mtu connections; a CONNECT is held to the version-1 one (PROTOCOL.md §1).
        if (datagram.data.length > options.maxDatagramSize) return void stats.invalidDatagrams++;
        return accept(packet, datagram.data, datagram.address, datagram.port);
      }
      const entry = live.get(packet.connectionId);
      if (entry !== undefined && entry.address === datagram.address && entry.port === datagram.port) {
        // On a secure connection a plain packet is a forgery (or a stale version-1 peer): never ingested.
        if (entry.session !== undefined) {
          stats.unauthenticatedDatagrams++;
          return;
        }
        proven(entry);
        entry.connection.ingest(packet, datagram.data.length);
        return;
      }
      stats.strangerDatagrams++;
      const closed = lingering.get(packet.connectionId);
      if (closed !== undefined && packet.type !== PacketType.Close && closed.address === datagram.address && closed.port === datagram.port) {
        answerClosed(packet.connectionId, closed, datagram.data.length);
      }
    };

    /** A packet other than CONNECT came from the starter's address: it is real. */
    const proven = (entry: Live): void => {
      if (!entry.halfOpen) return;
      entry.halfOpen = false;
      halfOpen--;
    };

    const onSealed = (datagram: Datagram): void => {
      stats.datagramsReceived++;
      const entry = live.get(connectionIdOf(datagram.data));
      if (entry === undefined || entry.session === undefined || entry.address !== datagram.address || entry.port !== datagram.port) {
        stats.strangerDatagrams++;
        return;
      }
      const packet = decodeSealed(entry.session, datagram.data, receiveLimit, stats);
      if (packet === undefined) return;
      proven(entry);
      entry.connection.ingest(packet, datagram.data.length);
    };

    const failAll = (error: unknown): void => {
      const failure = new ConnectionClosedError(`socket failed: ${describeFailure(error)}`);
      for (const { connection } of [...live.values()]) connection.fail(failure);
    };

    const subscription = socket.datagrams$.subscribe({
      next: onDatagram,
      error: (error: unknown) => {
        failAll(error);
        subscriber.error(asFailure(error, 'socket failed'));
      },
      complete: () => {
        failAll(new Error('socket closed'));
        subscriber.complete();
      },
    });

    return () => {
      stopped = true;
      for (const pending of deciding.values()) pending.unsubscribe();
      deciding.clear();
      subscription.unsubscribe();
      // A deliberate local shutdown: the connections' streams complete (no error), the peers are told reason 4.
      for (const { connection } of [...live.values()]) connection.abort(CloseReason.ShuttingDown, 'listener shutting down', undefined);
      sweeper.dispose();
      lingering.clear();
    };
  });
}

