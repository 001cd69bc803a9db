import { Observable, type SchedulerLike } from 'rxjs';
import { CloseReason, PacketType, type ConnectAckPacket, type ConnectPacket, type Packet } from '../wire/packet';
import { ConnectionCore } from './connection';
import { Deadline } from './deadline';
import { datagramTooLarge, decodeDatagram, errorCode, transmitter, type EndpointStats } from './endpoint';
import { asFailure, describeFailure } from './close';
import { ConnectionClosedError } from './errors';
import { answerOffer, type Extension } from './extensions';
import { MemoryAccount, MemoryBudget } from './memory-budget';
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
}

/** A connection closed recently: packets for it are answered with CLOSE (PROTOCOL.md §8). */
interface Lingering {
  readonly address: string;
  readonly port: number;
  readonly reason: number;
  readonly until: number;
  lastCloseSentAt: number;
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
    const memory = new MemoryBudget(config.maxMemory, largestClaim(options), (used) => (stats.memoryInUse = used));
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

    const accept = (connect: ConnectPacket, size: number, address: string, port: number): void => {
      const id = connect.connectionId;
      const existing = live.get(id);
      if (existing !== undefined) {
        if (existing.address === address && existing.port === port) return existing.connection.answerConnect({ ...existing.ack, nonce: connect.nonce }, size);
        // Another peer picked the same id: it must choose a new one.
        return reply({ type: PacketType.Close, connectionId: id, reason: CloseReason.ProtocolError, text: 'connection id in use' }, address, port);
      }
      const closed = lingering.get(id);
      if (closed !== undefined && closed.address === address && closed.port === port) return answerClosed(id, closed, size);
      if (live.size >= config.maxConnections) {
        stats.refusedConnections++;
        return reply({ type: PacketType.Close, connectionId: id, reason: CloseReason.TooManyConnections, text: 'too many connections' }, address, port);
      }
      if (memory.sharedFree < roomForConnection) {
        stats.refusedConnections++;
        return reply({ type: PacketType.Close, connectionId: id, reason: CloseReason.TooManyConnections, text: 'listener memory full' }, address, port);
      }
      const { answer, negotiated } = answerOffer(config.extensions ?? [], connect.extensions, size);
      const ack: ConnectAckPacket = {
        type: PacketType.ConnectAck,
        connectionId: id,
        maxDatagramSize: options.maxDatagramSize,
        receiveWindow: options.receiveWindow,
        nonce: connect.nonce,
        ...(answer.length > 0 ? { extensions: answer } : {}),
      };
      const connection = new ConnectionCore({
        id,
        remote: { address, port },
        extensions: negotiated,
        options,
        scheduler,
        peerMaxDatagramSize: connect.maxDatagramSize,
        peerReceiveWindow: connect.receiveWindow,
        peerValidated: false,
        memory: new MemoryAccount(memory),
        transmit: transmitter(socket, address, port, stats, (error) => {
          if (errorCode(error) === 'EMSGSIZE') connection.fail(datagramTooLarge(error, options.maxDatagramSize));
        }),
        onClosed: (info) => {
          live.delete(id);
          if (stopped) return;
          const until = scheduler.now() + lingerMs;
          // Delete first: a Map keeps a re-set key in its old place, and the sweeper relies on insertion order being time order.
          lingering.delete(id);
          lingering.set(id, { address, port, reason: info.reason, until, lastCloseSentAt: info.byPeer ? -Infinity : scheduler.now() });
          sweeper.setIfEarlier(until);
        },
        ...(config.initialSeq === undefined ? {} : { initialSeq: config.initialSeq }),
        ...(config.initialBatch === undefined ? {} : { initialBatch: config.initialBatch }),
      });
      // No separate half-open timer: within the §3 budget the connection pings a silent starter
      // like any idle peer, and the ordinary ping timeout ends one that never answers.
      live.set(id, { address, port, connection, ack });
      connection.answerConnect(ack, size);
      subscriber.next(connection);
    };

    const answerClosed = (id: number, closed: Lingering, triggerSize: number): void => {
      if (triggerSize < CLOSE_ANSWER_SIZE) return; // never answer with more bytes than were received
      const now = scheduler.now();
      if (now - closed.lastCloseSentAt < CLOSE_REPEAT_INTERVAL_MS) return;
      closed.lastCloseSentAt = now;
      reply({ type: PacketType.Close, connectionId: id, reason: closed.reason, text: '' }, closed.address, closed.port);
    };

    const onDatagram = (datagram: Datagram): void => {
      const packet = decodeDatagram(datagram, options.maxDatagramSize, stats);
      if (packet === undefined) return;
      if (packet.type === PacketType.Connect) return accept(packet, datagram.data.length, datagram.address, datagram.port);
      const entry = live.get(packet.connectionId);
      if (entry !== undefined && entry.address === datagram.address && entry.port === datagram.port) {
        entry.connection.ingest(packet, datagram.data.length);
        return;
      }
      stats.strangerDatagrams++;
      const closed = lingering.get(packet.connectionId);
      if (closed !== undefined && packet.type !== PacketType.Close && closed.address === datagram.address && closed.port === datagram.port) {
        answerClosed(packet.connectionId, closed, datagram.data.length);
      }
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
      subscription.unsubscribe();
      // A deliberate local shutdown: the connections' streams complete (no error), the peers are told reason 4.
      for (const { connection } of [...live.values()]) connection.abort(CloseReason.ShuttingDown, 'listener shutting down', undefined);
      sweeper.dispose();
      lingering.clear();
    };
  });
}

