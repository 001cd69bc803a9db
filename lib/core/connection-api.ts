import type { Observable, ObservableInput, Subject } from 'rxjs';
import type { SeqRange } from '../wire/packet';
import type { RudpError } from './errors';
import type { ConnectionStats } from './stats';

/** The public face of a connection: what `listen()` and `connect()` emit. */

export type ConnectionState = 'open' | 'closing' | 'closed';

export interface RemoteAddress {
  readonly address: string;
  readonly port: number;
}

/** How a connection ended. `error` is undefined for a normal close (reason 0) by either side. */
export interface CloseInfo {
  readonly reason: number;
  readonly text: string;
  readonly byPeer: boolean;
  readonly error: RudpError | undefined;
}

/** Notable things that happened on a connection, for logs and dashboards. `time` is the scheduler's clock. */
export type ConnectionEvent =
  | { readonly type: 'retransmit'; readonly time: number; readonly seq: number; readonly cause: 'timeout' | 'repeat' }
  | { readonly type: 'repeat-request'; readonly time: number; readonly ranges: readonly SeqRange[] }
  | { readonly type: 'ping'; readonly time: number }
  | { readonly type: 'ping-timeout'; readonly time: number; readonly silentMs: number }
  /** Path-MTU probing changed the size of the DATA packets this side sends (bytes, before any sealing). */
  | { readonly type: 'datagram-size'; readonly time: number; readonly size: number }
  | { readonly type: 'close'; readonly time: number; readonly info: CloseInfo };

/** One reliable, message-oriented connection to a peer. Symmetric: it does not matter who started it. */
export interface Connection {
  readonly id: number;
  readonly remote: RemoteAddress;
  /**
   * Whole messages from the peer, once each, in order. Completes on a normal close, errors on an
   * abnormal one — after every message already received. Multicast; while it has no subscriber,
   * arriving messages are held (never dropped) and the first subscriber gets them, and what is held
   * keeps the receive window closed, so the peer waits instead of this side buffering without bound.
   */
  readonly messages$: Observable<Uint8Array>;
  /**
   * Takes messages at the consumer's own pace: runs `handler` for each, at most `concurrency`
   * (default 1) at a time, and emits what the handlers emit. The receive window reopens as
   * handlers complete, so a slow consumer slows the peer down; memory stays within the receive
   * window plus one message. Completes or errors as `messages$` does, once its handlers are done.
   */
  receive<R>(handler: (message: Uint8Array) => ObservableInput<R>, options?: ReceiveOptions): Observable<R>;
  /**
   * Push messages to send. Completing it means: deliver everything sent, then close normally.
   * A message that would take the buffered bytes past `maxBufferedBytes` closes the connection
   * with SendBufferFullError: throttle on `bufferedBytes$`, or use `send()`.
   */
  readonly send$: Subject<Uint8Array>;
  /**
   * Sends one message. Cold: nothing is queued until you subscribe. Completes once every packet of
   * it is acknowledged; errors if the connection closes first (with the reason it closed), or at
   * once with SendBufferFullError when it does not fit in `maxBufferedBytes` (nothing is queued
   * then). Unsubscribing before any of its packets left withdraws it; once one has left, the
   * message is still delivered (the batch cannot be taken back), only no one is told.
   */
  send(message: Uint8Array): Observable<void>;
  /** Bytes queued or unacknowledged; replays the current value. Wait on it to throttle a producer. */
  readonly bufferedBytes$: Observable<number>;
  /** The send bound: a message fits when bufferedBytes + its size is at most this (`maxBufferedBytes`, or less while the listener's `maxMemory` has less room). */
  readonly maxBufferedBytes: number;
  /** Statistics every `intervalMs` on the connection's scheduler, until it closes. */
  statsEvery(intervalMs: number): Observable<ConnectionStats>;
  /** Retransmissions, repeat requests, pings, ping timeout and close, as they happen. Completes on close. */
  readonly events$: Observable<ConnectionEvent>;
  /** DIRECT datagrams from the peer: unreliable, unordered, as they arrive. Completes when the connection closes. */
  readonly direct$: Observable<Uint8Array>;
  /** Sends a DIRECT datagram; returns false when the connection is closed. Throws MessageTooLargeError above `maxDirectSize`. */
  sendDirect(payload: Uint8Array): boolean;
  /** Largest DIRECT payload: min(own, peer's maxDatagramSize) - 6. */
  readonly maxDirectSize: number;
  /** 'open' → ('closing' while flushing after `send$` completed) → 'closed'; replays the current state, also after the close. */
  readonly state$: Observable<ConnectionState>;
  /** Emits once how the connection ended, then completes. */
  readonly closed$: Observable<CloseInfo>;
  /** A snapshot of the connection's statistics. */
  readonly stats: ConnectionStats;
  /** Closes now (CLOSE reason 0): unsent and unacknowledged data is dropped, as PROTOCOL.md §8 says. */
  close(): void;
  /**
   * Channel `id` of this connection: its own ordered (or unordered) stream of messages, so that a
   * loss on one channel delays no message of another. Channel 0 is the connection's own
   * `messages$`/`send$`; ids 1..255 need a peer that negotiated channels (`channels: true` on
   * both `listen()` and `connect()`), else this throws ChannelsUnsupportedError. The first call
   * for an id sets its options; later calls return the same channel (InvalidOptionError if they
   * ask for other options). Both sides may send on a channel; a channel the peer sends on before
   * this side opened it holds its messages for the first subscriber.
   */
  channel(id: number, options?: ChannelOptions): Channel;
}

/** How a channel sends (docs/streams.md, Channels). The receiving side delivers as each message's sender asked. */
export interface ChannelOptions {
  /** true (default): messages are delivered in the order sent; false: each as soon as it is whole (still reliable, unless it has a ttl). */
  readonly ordered?: boolean;
  /**
   * Strict priority, an integer from -1000 to 1000, default 0 (channel 0's): a packet of a lower
   * priority leaves only while no channel of a higher one has anything queued; channels of equal
   * priority take turns packet by packet. Give bulk transfers a lower priority than control traffic.
   */
  readonly priority?: number;
  /** Default `ttl` (ms, 1..65535) of the channel's messages: partial reliability. Default none (reliable). */
  readonly ttl?: number;
}

export interface SendOptions {
  /**
   * ms, 1..65535: a message not acknowledged this long after send() queued it is abandoned (its
   * `send()` errors with MessageExpiredError) and the peer skips it, so later messages are not held
   * back; it is never delivered late. Unsubscribing before the acknowledgement abandons it too.
   * Default: the channel's `ttl`.
   */
  readonly ttl?: number;
}

/** One channel of a connection (Connection.channel): the surface of the connection's own stream. */
export interface Channel {
  readonly id: number;
  /** This channel's messages from the peer, once each (in order, unless the sender made them unordered); ends as the connection's `messages$`. */
  readonly messages$: Observable<Uint8Array>;
  /** As Connection.receive, for this channel's messages. */
  receive<R>(handler: (message: Uint8Array) => ObservableInput<R>, options?: ReceiveOptions): Observable<R>;
  /** Push messages to send on this channel (with its default ttl). Completing it ends nothing: close the connection for that. */
  readonly send$: Subject<Uint8Array>;
  /** As Connection.send, on this channel; with a ttl (its own or the channel's) it may end with MessageExpiredError. */
  send(message: Uint8Array, options?: SendOptions): Observable<void>;
  /** Bytes of this channel's messages queued or unacknowledged; replays the current value (0 and completes after the close). */
  readonly bufferedBytes$: Observable<number>;
}

export interface ReceiveOptions {
  /** Handlers running at once; default 1 (one message at a time, in order). */
  readonly concurrency?: number;
}
