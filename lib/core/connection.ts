import { BehaviorSubject, Observable, Subject, Subscription, interval, map, takeUntil, type SchedulerLike } from 'rxjs';
import {
  CloseReason,
  DATA_HEADER_SIZE,
  HEADER_SIZE,
  PacketType,
  type ClosePacket,
  type ConnectAckPacket,
  type DataPacket,
  type Packet,
  type SeqRange,
} from '../wire/packet';
import { MAX_CLOSE_TEXT_BYTES } from '../wire/packet';
import { encodedLength } from '../wire/codec';
import { coalesceAcks } from './acks';
import { AddressValidation } from './address-validation';
import { NO_EXTENSIONS, type NegotiatedExtensions } from './extensions';
import { errorForClose } from './close';
import { NewReno, type CongestionController } from './congestion';
import { Deadline } from './deadline';
import { ConnectionClosedError, ConnectionTimeoutError, MessageTooLargeError, ProtocolError, SendBufferFullError, type RudpError } from './errors';
import { heartbeat } from './heartbeat';
import type { ResolvedProtocolOptions } from './options';
import { DataOutcome, Receiver } from './receiver';
import { REDUNDANCY_MEMORY_MS, REDUNDANT_PACKET_MAX_SIZE, SmallPacketRedundancy } from './redundancy';
import { RttEstimator } from './rtt';
import { Sender } from './sender';
import { emptyCounters, type ConnectionCounters, type ConnectionStats } from './stats';

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
  | { readonly type: 'close'; readonly time: number; readonly info: CloseInfo };

/** One reliable, message-oriented connection to a peer. Symmetric: it does not matter who started it. */
export interface Connection {
  readonly id: number;
  readonly remote: RemoteAddress;
  /** Whole messages from the peer, once each, in order. Completes on a normal close, errors on an abnormal one. Hot: subscribe when the connection is emitted. */
  readonly messages$: Observable<Uint8Array>;
  /**
   * Push messages to send. Completing it means: deliver everything sent, then close normally.
   * A message that would take the buffered bytes past `maxBufferedBytes` closes the connection
   * with SendBufferFullError: throttle on `bufferedBytes$`, or use `send()`.
   */
  readonly send$: Subject<Uint8Array>;
  /**
   * Sends one message now; the result completes once every packet of it is acknowledged, and errors
   * if the connection closes first, or at once with SendBufferFullError when it does not fit in
   * `maxBufferedBytes` (nothing is queued then).
   */
  send(message: Uint8Array): Observable<void>;
  /** Bytes queued or unacknowledged; replays the current value. Wait on it to throttle a producer. */
  readonly bufferedBytes$: Observable<number>;
  /** The send bound (`maxBufferedBytes`): a message fits when bufferedBytes + its size is at most this. */
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
  /** 'open' → ('closing' while flushing after `send$` completed) → 'closed'; replays the current state. */
  readonly state$: Observable<ConnectionState>;
  /** Emits once how the connection ended, then completes. */
  readonly closed$: Observable<CloseInfo>;
  /** A snapshot of the connection's statistics. */
  readonly stats: ConnectionStats;
  /** Closes now (CLOSE reason 0): unsent and unacknowledged data is dropped, as PROTOCOL.md §8 says. */
  close(): void;
}

export interface ConnectionParams {
  readonly id: number;
  readonly remote: RemoteAddress;
  readonly options: ResolvedProtocolOptions;
  readonly scheduler: SchedulerLike;
  readonly peerMaxDatagramSize: number;
  readonly peerReceiveWindow: number;
  /** Encodes and sends a packet to the peer; returns the datagram's size in bytes. */
  readonly transmit: (packet: Packet) => number;
  /** Called once, when the connection has ended. */
  readonly onClosed?: (info: CloseInfo) => void;
  /**
   * False for a listener's new connection: until a packet other than CONNECT proves the source
   * address real, it sends at most 3 × the bytes of the CONNECTs it was credited with
   * (PROTOCOL.md §3). Default true (a starter chose the address it sends to).
   */
  readonly peerValidated?: boolean;
  /** The §12 extensions the handshake negotiated (none by default). */
  readonly extensions?: NegotiatedExtensions;
  /** Test hook (not public API): first `seq` and `batch` of both directions. */
  readonly initialSeq?: number;
  readonly initialBatch?: number;
  readonly congestion?: CongestionController;
}

const ACK_DELAY_MS = 5;
/**
 * In-order packets acknowledged together (at most half the receive window, so a small window
 * never waits for the delay). Every datagram costs a syscall at both ends: on two-process
 * loopback, 256 MiB, acking every 2 / 4 / 8 / 16 packets gave 190 / 208 / 250 / 236 MB/s and
 * 6.1 / 5.5 / 4.6 / 4.7 receiver CPU s/GiB. Out-of-order and duplicate packets are still acked at once.
 */
const ACK_EVERY = 8;
/** A DATA packet arriving this long after the previous one is on a quiet connection. */
const SPARSE_GAP_MS = 1;

/**
 * The protocol core of one connection, with no sockets and no clock of its own. The endpoint
 * feeds it the peer's packets (`receive`); it hands packets back through `transmit`. Incoming
 * packets are split by type; each concern lives in its own module (sender, receiver, acks,
 * heartbeat, close) and is composed here once per connection.
 */
export class ConnectionCore implements Connection {
  readonly id: number;
  readonly remote: RemoteAddress;
  readonly send$ = new Subject<Uint8Array>();
  readonly maxDirectSize: number;
  /** The §12 extensions this connection negotiated, by id (internal: extensions read their parameters here). */
  readonly extensions: NegotiatedExtensions;
  private readonly messagesSubject = new Subject<Uint8Array>();
  private readonly directSubject = new Subject<Uint8Array>();
  private readonly stateSubject = new BehaviorSubject<ConnectionState>('open');
  private readonly closedSubject = new Subject<CloseInfo>();
  private readonly eventsSubject = new Subject<ConnectionEvent>();
  private readonly bufferedSubject = new BehaviorSubject<number>(0);
  readonly events$ = this.eventsSubject.asObservable();
  /** Replays the current value; after the close, 0 (then completes), so late waiters are not left hanging. */
  readonly bufferedBytes$ = new Observable<number>((subscriber) => {
    if (this.closeInfo === undefined) return this.bufferedSubject.subscribe(subscriber);
    subscriber.next(0);
    subscriber.complete();
    return undefined;
  });
  readonly maxBufferedBytes: number;
  readonly messages$ = this.messagesSubject.asObservable();
  readonly direct$ = this.directSubject.asObservable();
  readonly state$ = this.stateSubject.asObservable();
  readonly closed$: Observable<CloseInfo>;
  private closeInfo: CloseInfo | undefined;

  private readonly counters: ConnectionCounters = emptyCounters();
  private readonly rtt: RttEstimator;
  private readonly congestion: CongestionController;
  private readonly sender: Sender;
  private readonly receiver: Receiver;
  private readonly alive$ = new Subject<void>();
  private readonly dataArrived$ = new Subject<boolean>();
  private readonly retransmitTimer: Deadline;
  private readonly repeatTimer: Deadline;
  private readonly subscriptions = new Subscription();
  private readonly scheduler: SchedulerLike;
  private readonly options: ResolvedProtocolOptions;
  private readonly transmitDatagram: (packet: Packet) => number;
  private readonly onClosed: ((info: CloseInfo) => void) | undefined;
  private pingNonce = 0;
  private lastDataAt = -Infinity;
  private lastAckSentAt = -Infinity;
  private readonly validation: AddressValidation;
  private pingSentAt = 0;
  /** A PING is waiting for its PING_ACK: a duplicated PING_ACK must not give a second RTT sample. */
  private pingOutstanding = false;

  constructor(params: ConnectionParams) {
    const { options, scheduler } = params;
    this.id = params.id;
    this.remote = params.remote;
    this.extensions = params.extensions ?? NO_EXTENSIONS;
    this.options = options;
    this.scheduler = scheduler;
    this.transmitDatagram = params.transmit;
    this.validation = new AddressValidation(params.peerValidated ?? true);
    this.onClosed = params.onClosed;
    const datagramSize = Math.min(options.maxDatagramSize, params.peerMaxDatagramSize);
    this.maxDirectSize = datagramSize - HEADER_SIZE;
    this.maxBufferedBytes = options.maxBufferedBytes;
    this.rtt = new RttEstimator(options.deliveryTimeout);
    this.congestion = params.congestion ?? new NewReno(datagramSize, 65535 * datagramSize);
    this.sender = new Sender(
      this.id,
      datagramSize - DATA_HEADER_SIZE,
      params.peerReceiveWindow,
      this.rtt,
      this.congestion,
      this.counters,
      (packet) => this.transmit(packet),
      (packet, cause) => {
        if (this.eventsSubject.observed) this.eventsSubject.next({ type: 'retransmit', time: this.scheduler.now(), seq: packet.seq, cause });
      },
      options.redundancy === 'auto' ? new SmallPacketRedundancy(REDUNDANT_PACKET_MAX_SIZE, REDUNDANCY_MEMORY_MS) : undefined,
      params.initialSeq,
      params.initialBatch,
    );
    this.receiver = new Receiver(
      { receiveWindow: options.receiveWindow, maxMessageSize: options.maxMessageSize, payloadSize: datagramSize - DATA_HEADER_SIZE },
      (message) => {
        this.counters.messagesReceived++;
        this.messagesSubject.next(message);
      },
      params.initialSeq,
      params.initialBatch,
    );
    this.retransmitTimer = new Deadline(scheduler, (now) => this.onRetransmitDue(now));
    this.repeatTimer = new Deadline(scheduler, (now) => this.askForGaps(now));
    this.closed$ = new Observable<CloseInfo>((subscriber) => {
      if (this.closeInfo !== undefined) {
        subscriber.next(this.closeInfo);
        subscriber.complete();
        return undefined;
      }
      return this.closedSubject.subscribe(subscriber);
    });

    this.subscriptions.add(
      this.alive$
        .pipe(heartbeat({ pingInterval: options.pingInterval, pingPacketCount: options.pingPacketCount, scheduler }))
        .subscribe({
          next: () => this.ping(),
          error: (error: RudpError) => {
            if (error instanceof ConnectionTimeoutError) this.emit({ type: 'ping-timeout', time: this.scheduler.now(), silentMs: error.silentMs });
            this.terminate(CloseReason.Timeout, 'no answer to pings', false, error, true);
          },
        }),
    );
    this.subscriptions.add(
      this.dataArrived$
        .pipe(coalesceAcks({ maxDelay: ACK_DELAY_MS, maxPending: Math.max(1, Math.min(ACK_EVERY, Math.floor(options.receiveWindow / 2))), scheduler }))
        .subscribe(() => this.acknowledge()),
    );
    this.subscriptions.add(
      this.send$.subscribe({
        next: (message) => this.enqueue(message, undefined),
        error: (err: unknown) => this.terminate(CloseReason.Normal, 'sender aborted', false, asRudpError(err), true),
        complete: () => this.finish(),
      }),
    );
  }

  get stats(): ConnectionStats {
    return {
      ...this.counters,
      rtt: this.rtt.srtt,
      rto: this.rtt.rto,
      congestionWindow: this.congestion.window,
      peerWindow: this.sender.window.peer,
      inFlight: this.sender.inFlight,
      inFlightBytes: this.sender.inFlightBytes,
      bufferedBytes: this.sender.bufferedBytes,
    };
  }

  statsEvery(intervalMs: number): Observable<ConnectionStats> {
    return interval(intervalMs, this.scheduler).pipe(
      map(() => this.stats),
      takeUntil(this.closed$),
    );
  }

  get state(): ConnectionState {
    return this.stateSubject.value;
  }

  send(message: Uint8Array): Observable<void> {
    // A Subject replays its completion or error to late subscribers: nothing is lost by subscribing late.
    const outcome = new Subject<void>();
    this.enqueue(message, outcome);
    return outcome.asObservable();
  }

  sendDirect(payload: Uint8Array): boolean {
    if (payload.length > this.maxDirectSize) {
      throw new MessageTooLargeError(`DIRECT payload of ${payload.length} bytes exceeds ${this.maxDirectSize}; send it as a message instead`);
    }
    if (this.closeInfo !== undefined) return false;
    if (!this.transmit({ type: PacketType.Direct, connectionId: this.id, payload })) return false;
    this.counters.directSent++;
    return true;
  }

  close(): void {
    this.terminate(CloseReason.Normal, '', false, undefined, true);
  }

  /** Closes with a reason other than normal (used by the endpoint when it shuts down). */
  abort(reason: number, text: string, error: RudpError | undefined): void {
    this.terminate(reason, text, false, error, true);
  }

  /** Ends the connection without sending anything (the transport failed). */
  fail(error: RudpError): void {
    this.terminate(CloseReason.Normal, '', false, error, false);
  }

  /** A valid packet from the peer's address, port and connection id. */
  receive(packet: Packet, size: number): void {
    if (this.closeInfo !== undefined) return;
    this.counters.packetsReceived++;
    this.counters.bytesReceived += size;
    this.alive$.next();
    if (!this.validation.validated) {
      this.validation.validate();
      this.afterSenderChange(this.scheduler.now()); // send what the budget held back
      if (this.closeInfo !== undefined) return;
    }
    switch (packet.type) {
      case PacketType.Data:
        return this.onData(packet);
      case PacketType.DataAck: {
        const now = this.scheduler.now();
        const buffered = this.sender.bufferedBytes;
        if (!this.sender.onAck(packet, now)) {
          return this.terminate(CloseReason.ProtocolError, 'acknowledged a packet never sent', false, new ProtocolError('peer acknowledged a DATA packet we never sent'), true);
        }
        if (this.sender.bufferedBytes !== buffered && this.closeInfo === undefined) this.bufferedSubject.next(this.sender.bufferedBytes);
        return this.afterSenderChange(now);
      }
      case PacketType.Repeat: {
        const now = this.scheduler.now();
        this.sender.onRepeat(packet.ranges, now);
        return this.afterSenderChange(now);
      }
      case PacketType.Ping:
        this.transmit({ type: PacketType.PingAck, connectionId: this.id, nonce: packet.nonce });
        return;
      case PacketType.PingAck:
        if (this.pingOutstanding && packet.nonce === this.pingNonce) {
          this.pingOutstanding = false;
          this.rtt.sample(this.scheduler.now() - this.pingSentAt);
        }
        return;
      case PacketType.Close:
        return this.onClose(packet);
      case PacketType.Direct:
        this.counters.directReceived++;
        this.directSubject.next(packet.payload);
        return;
      default:
        // CONNECT and CONNECT_ACK are the endpoint's business (a resent handshake).
        return;
    }
  }

  /**
   * A listener's answer to a CONNECT for this connection (the first, or one resent because the
   * CONNECT_ACK was lost): the CONNECT's bytes join the address-validation budget, which the
   * CONNECT_ACK then spends.
   */
  answerConnect(ack: ConnectAckPacket, connectSize: number): void {
    if (this.closeInfo !== undefined) return;
    this.validation.credit(connectSize);
    this.transmit(ack);
    this.afterSenderChange(this.scheduler.now()); // a larger budget may let held DATA go
  }

  /**
   * The starter's first word once open: a DATA_ACK of its (empty) receive state, sent at once so
   * the listener sees the starter's address is real and may send freely (PROTOCOL.md §3's SHOULD),
   * without waiting for data or a ping. `handshakeRtt` seeds the RTT estimate when the first
   * CONNECT was the one answered (Karn).
   */
  greet(handshakeRtt: number | undefined): void {
    if (handshakeRtt !== undefined) this.rtt.sample(handshakeRtt);
    this.acknowledge();
  }

  /** Counts a datagram the endpoint dropped on this connection's behalf. */
  countDrop(): void {
    this.counters.droppedDatagrams++;
  }

  private onData(packet: DataPacket): void {
    this.counters.dataPacketsReceived++;
    const now = this.scheduler.now();
    const hadGaps = this.receiver.hasGaps;
    const delivered = this.counters.messagesReceived;
    const quietBefore = now - this.lastDataAt >= SPARSE_GAP_MS;
    this.lastDataAt = now;
    switch (this.receiver.onData(packet, now)) {
      case DataOutcome.New: {
        if (this.closeInfo !== undefined) return; // the application closed while a message was delivered
        // At once: out of order or filling a gap, so the sender learns quickly (RFC 5681 §4.2); or
        // a message completed on a quiet connection, where waiting would coalesce nothing and only
        // cost a timer and 5 ms of the sender's RTT estimate.
        const hasGaps = this.receiver.hasGaps;
        const sparse = quietBefore && this.counters.messagesReceived !== delivered;
        this.dataArrived$.next(hadGaps || hasGaps || sparse);
        if (hasGaps) this.askForGaps(now);
        return;
      }
      case DataOutcome.Duplicate:
        this.counters.duplicatesReceived++;
        // Every DATA is acknowledged (PROTOCOL.md §5). A copy right behind an ack that covered it
        // (redundancy sends two at once) may wait for the coalescing delay; otherwise our ack was
        // probably lost: answer at once.
        this.dataArrived$.next(now - this.lastAckSentAt >= SPARSE_GAP_MS);
        return;
      case DataOutcome.OutsideWindow:
        this.counters.droppedDatagrams++;
        this.dataArrived$.next(true);
        return;
      case DataOutcome.Violation: {
        const v = this.receiver.violation!;
        const error = v.closeReason === CloseReason.MessageTooLarge ? new MessageTooLargeError(v.message) : new ProtocolError(v.message);
        this.terminate(v.closeReason, v.message, false, error, true);
        return;
      }
    }
  }

  private acknowledge(): void {
    if (this.closeInfo !== undefined) return;
    this.counters.acksSent++;
    this.lastAckSentAt = this.scheduler.now();
    this.transmit({
      type: PacketType.DataAck,
      connectionId: this.id,
      cumulative: this.receiver.cumulative,
      window: this.receiver.window,
      ranges: this.receiver.ackRanges(),
    });
  }

  /** Sends REPEAT for gaps past the reorder threshold, and arms the timer for the next ones. */
  private askForGaps(now: number): void {
    if (this.closeInfo !== undefined) return;
    const { repeatDelay, deliveryTimeout } = this.options;
    // "One round trip" (PROTOCOL.md §6), plus one RTT deviation (a bare SRTT races the resend under
    // jitter), and never sooner than the RTO's floor: with a near-zero RTT estimate a packet that is
    // always lost would otherwise be asked for again at the same instant, forever.
    const reaskAfter = this.rtt.srtt === undefined ? deliveryTimeout / 2 : Math.max(this.rtt.srtt + this.rtt.rttvar, Math.min(10, deliveryTimeout));
    const ranges = this.receiver.takeRepeatRanges(now, repeatDelay, reaskAfter);
    if (ranges.length > 0) {
      this.counters.repeatsSent++;
      this.transmit({ type: PacketType.Repeat, connectionId: this.id, ranges });
      this.emit({ type: 'repeat-request', time: now, ranges });
    }
    this.repeatTimer.set(this.receiver.nextRepeatTime(repeatDelay, reaskAfter));
  }

  /** Queues a message from send$ (no `outcome`) or send() (its outcome Subject). */
  private enqueue(message: Uint8Array, outcome: Subject<void> | undefined): void {
    const acked = outcome;
    if (this.closeInfo !== undefined || this.state === 'closing') {
      acked?.error(this.closeInfo ? closedError(this.closeInfo) : new ConnectionClosedError('send$ already completed: the connection is closing'));
      return;
    }
    if (this.sender.bufferedBytes + message.length > this.maxBufferedBytes) {
      const error = new SendBufferFullError(
        `a ${message.length}-byte message does not fit: ${this.sender.bufferedBytes} of maxBufferedBytes ${this.maxBufferedBytes} ` +
          `are waiting for acknowledgement; wait on bufferedBytes$ (or use send() with mergeMap) before sending more, or raise maxBufferedBytes`,
      );
      if (acked !== undefined) return acked.error(error);
      return this.terminate(CloseReason.ShuttingDown, 'sender overflowed its send buffer', false, error, true);
    }
    try {
      this.sender.enqueue(
        message,
        acked && (() => acked.complete()),
        acked && ((error) => acked.error(error)),
      );
    } catch (e) {
      const error = new MessageTooLargeError(`message of ${message.length} bytes needs more than 65535 packets: ${(e as Error).message}`);
      if (acked !== undefined) return acked.error(error);
      return this.terminate(CloseReason.Normal, 'local error: message too large', false, error, true);
    }
    this.counters.messagesSent++;
    this.bufferedSubject.next(this.sender.bufferedBytes);
    this.afterSenderChange(this.scheduler.now());
  }

  /** After anything that may open the window or queue data: send what fits, keep the deadline honest. */
  private afterSenderChange(now: number): void {
    if (this.closeInfo !== undefined) return;
    this.sender.pump(now, this.validation.allowance);
    if (this.sender.inFlight > 0) this.retransmitTimer.setIfEarlier(now + this.rtt.rto);
    if (this.state === 'closing' && this.sender.idle) this.terminate(CloseReason.Normal, '', false, undefined, true);
  }

  private onRetransmitDue(now: number): void {
    if (this.closeInfo !== undefined) return;
    this.sender.onTimeout(now);
    this.sender.pump(now);
    this.retransmitTimer.set(this.sender.nextDeadline());
  }

  private ping(): void {
    const nonce = (this.pingNonce + 1) >>> 0;
    if (!this.transmit({ type: PacketType.Ping, connectionId: this.id, nonce })) return; // beyond the budget: the next one may fit
    this.pingNonce = nonce;
    this.pingOutstanding = true;
    this.pingSentAt = this.scheduler.now();
    this.counters.pingsSent++;
    this.emit({ type: 'ping', time: this.pingSentAt });
  }

  private emit(event: ConnectionEvent): void {
    if (this.eventsSubject.observed) this.eventsSubject.next(event);
  }

  private finish(): void {
    if (this.closeInfo !== undefined) return;
    if (this.sender.idle) return this.close();
    this.stateSubject.next('closing');
  }

  private onClose(packet: ClosePacket): void {
    this.terminate(packet.reason, packet.text, true, errorForClose(packet.reason, packet.text), false);
  }

  /** Sends a packet; false when the address-validation budget holds it back (nothing sent). */
  private transmit(packet: Packet): boolean {
    if (!this.validation.validated && !this.validation.spend(encodedLength(packet))) return false;
    this.counters.packetsSent++;
    this.counters.bytesSent += this.transmitDatagram(packet);
    return true;
  }

  private terminate(reason: number, text: string, byPeer: boolean, error: RudpError | undefined, sendClose: boolean): void {
    if (this.closeInfo !== undefined) return;
    const info: CloseInfo = { reason, text, byPeer, error };
    if (sendClose) {
      const close: ClosePacket = { type: PacketType.Close, connectionId: this.id, reason, text: truncateUtf8(text, MAX_CLOSE_TEXT_BYTES) };
      // CLOSE is never acknowledged, and a starter's socket does not linger to repeat it: a second
      // copy makes a lost CLOSE (and the peer's ping timeout instead of a clean end) much rarer.
      this.transmit(close);
      this.transmit(close);
    }
    this.closeInfo = info;
    this.subscriptions.unsubscribe();
    this.retransmitTimer.dispose();
    this.repeatTimer.dispose();
    this.sender.clear(closedError(info));
    this.receiver.clear();
    if (this.stateSubject.value !== 'closed') this.stateSubject.next('closed');
    this.stateSubject.complete();
    this.closedSubject.next(info);
    this.closedSubject.complete();
    this.emit({ type: 'close', time: this.scheduler.now(), info });
    this.eventsSubject.complete();
    this.bufferedSubject.next(0);
    this.bufferedSubject.complete();
    // direct$ only completes: its datagrams were never promised, and the reason is on messages$ and closed$.
    this.directSubject.complete();
    if (error === undefined) this.messagesSubject.complete();
    else this.messagesSubject.error(error);
    this.onClosed?.(info);
  }
}

function closedError(info: CloseInfo): RudpError {
  return info.error ?? new ConnectionClosedError('the connection closed before the message was acknowledged', info.reason);
}

function asRudpError(err: unknown): RudpError {
  return new ConnectionClosedError(`send$ errored: ${err instanceof Error ? err.message : String(err)}`);
}

function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let out = text.slice(0, maxBytes);
  while (Buffer.byteLength(out) > maxBytes) out = out.slice(0, -1);
  return out;
}
