import { BehaviorSubject, Observable, Subject, Subscription, interval, map, takeUntil, type ObservableInput, type SchedulerLike } from 'rxjs';
import { encodedLength } from '../wire/codec';
import { ChannelPacketType } from '../wire/channels';
import { CloseReason, DATA_HEADER_SIZE, HEADER_SIZE, MAX_CLOSE_TEXT_BYTES, PacketType, type ClosePacket, type ConnectAckPacket, type Packet } from '../wire/packet';
import { AddressValidation } from './address-validation';
import { Bbr } from './congestion/bbr';
import type { CongestionController } from './congestion/controller';
import { NewReno } from './congestion/new-reno';
import { ConnectionChannel, DefaultChannel, resolveChannelOptions, sameOptions, type ChannelHost } from './channels/channel';
import { ChannelsUnsupportedError } from './channels/errors';
import { negotiatedMaxChannel } from './channels/extension';
import { sendChannel } from './channels/send-queues';
import type { Channel, ChannelOptions, CloseInfo, Connection, ConnectionEvent, ConnectionState, ReceiveOptions, RemoteAddress } from './connection-api';
import { ConnectionClosedError, ConnectionTimeoutError, InvalidOptionError, MessageTooLargeError, SendBufferFullError, type RudpError } from './errors';
import { NO_EXTENSIONS, type NegotiatedExtensions } from './extensions';
import { Inbox } from './inbox';
import { MemoryAccount, UNBOUNDED } from './memory-budget';
import type { ResolvedProtocolOptions } from './options';
import { ACK_NOW, acknowledge, type AckTrigger } from './pipelines/acknowledge';
import { failureEnding, localClose, peerClosed, transportFailed, type Ending } from './pipelines/close';
import { receiveDirect } from './pipelines/direct';
import { answerPings, keepAlive } from './pipelines/heartbeat';
import { answerProbes, probePath } from './pipelines/probe-path';
import { PathMtuSearch } from './path-mtu/search';
import { reassemble, type Arrival } from './pipelines/reassemble';
import { requestRepeats } from './pipelines/request-repeats';
import { retransmit } from './pipelines/retransmit';
import { Sink } from './pipelines/relay';
import { PacketRoutes, Route } from './pipelines/route';
import { Receiver } from './receiver';
import { REDUNDANCY_MEMORY_MS, REDUNDANT_PACKET_MAX_SIZE, SmallPacketRedundancy } from './redundancy';
import { RttEstimator } from './rtt';
import { Sender, type OutgoingMessage } from './sender';
import type { SendChannel } from './channels/send-queues';
import { emptyCounters, type ConnectionCounters, type ConnectionStats } from './stats';

export type { Channel, ChannelOptions, CloseInfo, Connection, ConnectionEvent, ConnectionState, ReceiveOptions, RemoteAddress, SendOptions } from './connection-api';

/** A channel's receive side (created when the peer first uses it) and, once opened here, its API. */
interface ChannelSlot {
  readonly inbox: Inbox;
  api: ConnectionChannel | undefined;
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
  /** This connection's share of its listener's `maxMemory` (default: no bound beyond its own limits). */
  readonly memory?: MemoryAccount;
  /** Test hook (not public API): first `seq` and `batch` of both directions. */
  readonly initialSeq?: number;
  readonly initialBatch?: number;
  readonly congestion?: CongestionController;
  /**
   * Present when the connection negotiated path-mtu (docs/protocol.md §13.3): the largest packet
   * (bytes before sealing) this side may probe for and send, and what sealing adds to each.
   */
  readonly pathMtu?: { readonly ceiling: number; readonly overhead: number };
  /** Longest datagram accepted on this connection (longer ones are dropped and counted). Default: options.maxDatagramSize. */
  readonly largestDatagram?: number;
}

const ACK_DELAY_MS = 5;
const MIN_PACKETS_IN_WINDOW = 8;
/**
 * In-order packets acknowledged together (at most half the receive window, so a small window
 * never waits for the delay). Every datagram costs a syscall at both ends: on two-process
 * loopback, 256 MiB, acking every 2 / 4 / 8 / 16 packets gave 190 / 208 / 250 / 236 MB/s and
 * 6.1 / 5.5 / 4.6 / 4.7 receiver CPU s/GiB. Out-of-order and duplicate packets are still acked at once.
 */
const ACK_EVERY = 8;

/**
 * The protocol core of one connection, with no sockets and no clock of its own: the endpoint
 * hands it the peer's packets (`ingest`), it hands packets back through `transmit`. The packets
 * are split by type (PacketRoutes) into operator pipelines, one concern each (pipelines/), built
 * once here; their outputs merge into the wire, their typed errors into one close path.
 */
export class ConnectionCore implements Connection {
  readonly id: number;
  readonly remote: RemoteAddress;
  readonly send$ = new Subject<Uint8Array>();
  readonly maxDirectSize: number;
  /** The §12 extensions this connection negotiated, by id (internal: extensions read their parameters here). */
  readonly extensions: NegotiatedExtensions;
  private readonly directSubject = new Subject<Uint8Array>();
  private readonly stateSubject = new BehaviorSubject<ConnectionState>('open');
  private readonly closedSubject = new Subject<CloseInfo>();
  private readonly eventsSubject = new Subject<ConnectionEvent>();
  private readonly bufferedSubject = new BehaviorSubject<number>(0);
  readonly events$ = this.eventsSubject.asObservable();
  readonly direct$ = this.directSubject.asObservable();
  private closeInfo: CloseInfo | undefined;

  private readonly counters: ConnectionCounters = emptyCounters();
  private readonly options: ResolvedProtocolOptions;
  private readonly scheduler: SchedulerLike;
  private readonly rtt: RttEstimator;
  private readonly congestion: CongestionController;
  private readonly sender: Sender;
  private readonly receiver: Receiver;
  private readonly inbox: Inbox;
  /** Path-MTU probing's state, on a connection that negotiated it and may grow its packets. */
  private readonly search: PathMtuSearch | undefined;
  private readonly largestDatagram: number;
  private readonly validation: AddressValidation;
  private readonly memory: MemoryAccount;
  /** When DATA last left or arrived: a connection carrying data does not PING at the first interval of silence. */
  private lastDataAt = -Infinity;
  /** Send-buffer bytes claimed from `memory` (what bufferedBytes was when last settled). */
  private sendClaimed = 0;
  private readonly routes = new PacketRoutes();
  /** Ticks when a message was queued; completes when send$ does (flush, then close). */
  private readonly queued$ = new Route<void>();
  /** Ticks when a message longer than one version-1 packet is queued: larger packets would carry it in fewer. */
  private readonly largeQueued$ = new Route<void>();
  /** Ticks when the address-validation budget lets more out. */
  private readonly unblocked$ = new Route<void>();
  /** DATA arrivals, and ACK_NOW for the greeting and window updates. */
  private readonly ackTriggers$ = new Route<AckTrigger>();
  private readonly subscriptions = new Subscription();
  private readonly transmitDatagram: (packet: Packet) => number;
  private readonly onClosed: ((info: CloseInfo) => void) | undefined;
  /** Highest channel id negotiated; undefined without channels (only channel 0). */
  private readonly maxChannel: number | undefined;
  /** Channels other than 0 in use, created on first use (idle connections keep none). */
  private channels: Map<number, ChannelSlot> | undefined;
  /** Packets of messages delivered on channels other than 0 and not yet consumed: they close the one receive window too. */
  private channelHeldPackets = 0;
  private channelHost: ChannelHost | undefined;
  private defaultChannel: DefaultChannel | undefined;

  constructor(params: ConnectionParams) {
    const { options, scheduler } = params;
    this.id = params.id;
    this.remote = params.remote;
    this.options = options;
    this.scheduler = scheduler;
    this.extensions = params.extensions ?? NO_EXTENSIONS;
    this.transmitDatagram = params.transmit;
    this.onClosed = params.onClosed;
    this.validation = new AddressValidation(params.peerValidated ?? true);
    const datagramSize = Math.min(options.maxDatagramSize, params.peerMaxDatagramSize);
    const payloadSize = datagramSize - DATA_HEADER_SIZE;
    this.maxDirectSize = datagramSize - HEADER_SIZE;
    const memory = (this.memory = params.memory ?? new MemoryAccount(UNBOUNDED()));
    memory.onRoom = () => this.askForTurnedAway();
    const rtt = (this.rtt = new RttEstimator(options.deliveryTimeout));
    this.congestion = params.congestion ?? new (options.congestionControl === 'newreno' ? NewReno : Bbr)(datagramSize, 65535 * datagramSize);
    const redundancy = options.redundancy === 'auto' ? new SmallPacketRedundancy(REDUNDANT_PACKET_MAX_SIZE, REDUNDANCY_MEMORY_MS) : undefined;
    const pathMtu = params.pathMtu;
    // The peer's window holds receiveWindow packets of the version-1 size (receiver.ts): packets so
    // large that fewer than MIN_PACKETS_IN_WINDOW of them fit would make the flow stop and wait.
    const ceiling = pathMtu === undefined ? 0 : Math.min(pathMtu.ceiling, Math.floor((params.peerReceiveWindow * payloadSize) / MIN_PACKETS_IN_WINDOW) + DATA_HEADER_SIZE);
    const search = pathMtu !== undefined && ceiling > datagramSize ? new PathMtuSearch(datagramSize, ceiling, pathMtu.overhead) : undefined;
    this.search = search;
    this.largestDatagram = params.largestDatagram ?? options.maxDatagramSize;
    const sender = (this.sender = new Sender(this.id, search ?? { payloadSize }, params.peerReceiveWindow, rtt, this.congestion, this.counters, redundancy, params.initialSeq, params.initialBatch));
    const inbox = (this.inbox = new Inbox((_packets, bytes) => {
      this.receiver.released(bytes);
      this.windowReopened();
    }));
    const maxChannel = (this.maxChannel = negotiatedMaxChannel(this.extensions));
    const receiver = (this.receiver = new Receiver(
      {
        receiveWindow: options.receiveWindow,
        maxMessageSize: options.maxMessageSize,
        payloadSize,
        heldPackets: () => inbox.heldPackets + this.channelHeldPackets,
        memory,
        ...(maxChannel === undefined ? {} : { channels: { maxChannel, deliver: (channel: number, message: Uint8Array, packets: number) => this.deliverOnChannel(channel, message, packets) } }),
      },
      (message, packets) => {
        this.counters.messagesReceived++;
        inbox.push(message, packets);
      },
      params.initialSeq,
      params.initialBatch,
    ));

    const { routes, counters, id: connectionId } = this;
    routes.channels = maxChannel !== undefined;
    // Each DATA arrival feeds two pipelines: acknowledge (with the greeting and window updates) and repeat requests.
    const ackTriggers$ = this.ackTriggers$;
    const arrivals$ = new Route<Arrival>();
    const maxPending = Math.max(1, Math.min(ACK_EVERY, Math.floor(options.receiveWindow / 2)));
    const flushed$ = this.queued$.pipe(
      retransmit({
        sender,
        rtt,
        scheduler,
        acks$: routes.dataAck$,
        repeats$: routes.repeat$,
        unblocked$: this.unblocked$,
        allowance: () => this.validation.allowance,
        onResend: (packet, cause) => this.emit({ type: 'retransmit', time: scheduler.now(), seq: packet.seq, cause }),
        onBufferedBytes: (bytes) => this.bufferedChanged(bytes),
      }),
    );
    // The wire is the merge of the pipelines' outputs; a pipeline's typed error ends the connection.
    // (Each pipeline ends in a one-object Sink sharing these two callbacks: RxJS's merge() would cost
    // ~7 KB per connection, a subscribe({ … }) per pipeline ~300 bytes.)
    const toWire = (packet: Packet): void => void this.transmit(packet);
    const failed = (error: unknown): void => this.end(failureEnding(error));
    const pipelines: Observable<Packet>[] = [
      ackTriggers$.pipe(acknowledge({ connectionId, receiver, maxDelay: ACK_DELAY_MS, maxPending, scheduler })),
      arrivals$.pipe(requestRepeats({ connectionId, receiver, rtt, repeatDelay: options.repeatDelay, deliveryTimeout: options.deliveryTimeout, scheduler })),
      routes.heard$.pipe(
        keepAlive({ connectionId, pingInterval: options.pingInterval, pingPacketCount: options.pingPacketCount, scheduler, pingAcks$: routes.pingAck$, rtt, lastDataAt: () => this.lastDataAt }),
      ),
      routes.ping$.pipe(answerPings()),
    ];
    if (pathMtu !== undefined) {
      routes.pathMtu = true;
      pipelines.push(routes.probe$.pipe(answerProbes()));
    }
    if (search !== undefined) {
      const resized = (size: number): void => {
        this.congestion.datagramSize = size;
        this.emit({ type: 'datagram-size', time: scheduler.now(), size });
      };
      search.onShrunk = () => resized(search.datagramSize);
      const wanted = (): boolean => this.validation.validated;
      pipelines.push(this.largeQueued$.pipe(probePath({ connectionId, search, rtt, scheduler, probeAcks$: routes.probeAck$, wanted, onRaised: resized })));
    }
    for (const pipeline of pipelines) this.subscriptions.add(pipeline.subscribe(new Sink(toWire, failed)));
    // Everything sent after send$ completed is acknowledged: a normal close.
    this.subscriptions.add(flushed$.subscribe(new Sink(toWire, failed, () => this.close())));
    this.subscriptions.add(
      routes.data$.pipe(reassemble({ receiver, scheduler, counters })).subscribe(
        new Sink((arrival: Arrival) => {
          ackTriggers$.next(arrival);
          arrivals$.next(arrival);
        }, failed),
      ),
    );
    this.subscriptions.add(routes.close$.subscribe(new Sink((packet: ClosePacket) => this.end(peerClosed(packet)), failed)));
    this.subscriptions.add(routes.direct$.pipe(receiveDirect(counters)).subscribe(new Sink((payload: Uint8Array) => this.directSubject.next(payload), failed)));
    // Not in `subscriptions`: it outlives the close, so that a message pushed afterwards is counted
    // and reported (onSendAfterClose) instead of disappearing.
    this.send$.subscribe({
      next: (message) => this.enqueue(message, undefined),
      error: (err: unknown) => this.end(localClose(CloseReason.ShuttingDown, 'sender aborted', sendAborted(err))),
      complete: () => this.finish(),
    });
  }

  /** Told of each message pushed into `send$` after the close (it is dropped): the API layer warns. */
  onSendAfterClose: ((info: CloseInfo) => void) | undefined;

  get messages$(): Observable<Uint8Array> {
    return this.inbox.messages$;
  }

  // Getters, not fields: an Observable and a closure each, times 10,000 idle connections.
  /** Replays the current value; after the close, 0 (then completes), so late waiters are not left hanging. */
  get bufferedBytes$(): Observable<number> {
    return this.afterClose(this.bufferedSubject, () => 0);
  }

  get state$(): Observable<ConnectionState> {
    return this.afterClose(this.stateSubject, () => 'closed' as const);
  }

  get closed$(): Observable<CloseInfo> {
    return this.afterClose(this.closedSubject, (info) => info);
  }

  receive<R>(handler: (message: Uint8Array) => ObservableInput<R>, options: ReceiveOptions = {}): Observable<R> {
    return this.inbox.receive(handler, options.concurrency ?? 1);
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
      datagramSize: this.congestion.datagramSize,
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

  /** The send bound: `maxBufferedBytes`, or less while the listener's `maxMemory` has less room. */
  get maxBufferedBytes(): number {
    const own = this.options.maxBufferedBytes;
    const free = this.memory.budget.sharedFree;
    return free >= own ? own : Math.min(own, this.sender.bufferedBytes + Math.max(0, free));
  }

  channel(id: number, options?: ChannelOptions): Channel {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id > 65535) throw new InvalidOptionError('channel', id, 'an integer channel id from 0');
    if (id === 0) {
      if (options !== undefined && !sameOptions(resolveChannelOptions(options), CHANNEL_ZERO)) {
        throw new InvalidOptionError('channel 0 options', JSON.stringify(options), 'none: channel 0 is the connection\'s own stream (ordered, reliable, priority 0); open another channel for other options');
      }
      return (this.defaultChannel ??= new DefaultChannel(this));
    }
    if (this.maxChannel === undefined) throw new ChannelsUnsupportedError(id);
    if (id > this.maxChannel) throw new InvalidOptionError('channel', id, `an integer from 0 to ${this.maxChannel} (the highest channel this connection negotiated)`);
    const resolved = resolveChannelOptions(options ?? {});
    const slot = this.channelSlot(id);
    if (slot.api !== undefined) {
      if (options !== undefined && !sameOptions(resolved, slot.api.options)) {
        throw new InvalidOptionError(`channel ${id} options`, JSON.stringify(options), `those it was opened with (${JSON.stringify(slot.api.options)}), or none`);
      }
      return slot.api;
    }
    const sending = sendChannel(id, { priority: resolved.priority, unordered: !resolved.ordered });
    return (slot.api = new ConnectionChannel(id, resolved, sending, slot.inbox, (this.channelHost ??= this.makeChannelHost())));
  }

  send(message: Uint8Array): Observable<void> {
    return new Observable<void>((subscriber) => {
      const queued = this.enqueue(message, subscriber);
      return () => {
        // Unsubscribed before any packet of it left: take it back.
        if (queued !== undefined && this.closeInfo === undefined && this.sender.withdraw(queued)) this.bufferedChanged(this.sender.bufferedBytes);
      };
    });
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
    this.end(localClose(CloseReason.Normal, '', undefined));
  }

  /** Closes with a reason other than normal (used by the endpoint when it shuts down). */
  abort(reason: number, text: string, error: RudpError | undefined): void {
    this.end(localClose(reason, text, error));
  }

  /** Ends the connection without sending anything (the transport failed). */
  fail(error: RudpError): void {
    this.end(transportFailed(error));
  }

  /** A valid packet from the peer's address, port and connection id. */
  ingest(packet: Packet, size: number): void {
    if (this.closeInfo !== undefined) return;
    if (size > this.largestDatagram) {
      this.counters.droppedDatagrams++; // longer than this side accepts on this connection (PROTOCOL.md §1)
      return;
    }
    this.counters.packetsReceived++;
    this.counters.bytesReceived += size;
    if (packet.type === PacketType.Data || packet.type === ChannelPacketType.ChannelData) this.lastDataAt = this.scheduler.now();
    if (!this.validation.validated) {
      this.validation.validate();
      this.unblocked$.next(); // send what the budget held back
      if (this.closeInfo !== undefined) return;
    }
    if (!this.routes.route(packet)) this.counters.droppedDatagrams++; // an extension packet this connection did not negotiate
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
    this.unblocked$.next();
  }

  /**
   * The starter's first word once open: a DATA_ACK of its (empty) receive state, sent at once so
   * the listener sees the starter's address is real and may send freely (PROTOCOL.md §3's SHOULD),
   * without waiting for data or a ping. `handshakeRtt` seeds the RTT estimate when the first
   * CONNECT was the one answered (Karn).
   */
  greet(handshakeRtt: number | undefined): void {
    if (handshakeRtt !== undefined) this.rtt.sample(handshakeRtt);
    this.ackTriggers$.next(ACK_NOW);
  }

  /**
   * The socket refused a datagram as too large (EMSGSIZE). True when path-MTU probing takes it
   * (a PROBE was too large: the search ends; or the size it raised to no longer goes: back to the
   * version-1 size); false when even that size fails, which the endpoint reports as fatal.
   */
  datagramRefused(): boolean {
    const search = this.search;
    if (search === undefined) return false;
    if (search.probeSize !== undefined) search.stop();
    else if (search.datagramSize > search.base) search.shrink();
    else return false;
    return true;
  }

  /** Counts a datagram the endpoint dropped on this connection's behalf. */
  countDrop(): void {
    this.counters.droppedDatagrams++;
  }

  /** The channel's state, created when first used by either side. */
  private channelSlot(id: number): ChannelSlot {
    const channels = (this.channels ??= new Map());
    let slot = channels.get(id);
    if (slot === undefined) {
      const inbox = new Inbox((packets, bytes) => {
        this.channelHeldPackets -= packets;
        this.receiver.released(bytes);
        this.windowReopened();
      });
      if (this.closeInfo !== undefined) inbox.end(this.closeInfo.error);
      channels.set(id, (slot = { inbox, api: undefined }));
    }
    return slot;
  }

  /** A whole message from the receiver's channel lanes. */
  private deliverOnChannel(channel: number, message: Uint8Array, packets: number): void {
    this.counters.messagesReceived++;
    if (channel === 0) return this.inbox.push(message, packets);
    this.channelHeldPackets += packets;
    this.channelSlot(channel).inbox.push(message, packets);
  }

  private makeChannelHost(): ChannelHost {
    return {
      enqueue: (message, waiter, channel, ttl) => this.enqueue(message, waiter, channel, ttl),
      cancel: (queued) => {
        if (this.closeInfo !== undefined) return;
        // A message with a ttl may be given up on even after it started: the peer is told to skip it.
        if (this.sender.withdraw(queued) || (queued.ttl > 0 && this.sender.abandon(queued, this.scheduler.now()))) {
          this.bufferedChanged(this.sender.bufferedBytes);
          this.queued$.next(); // an abandoned message may still owe the peer an ABANDON
        }
      },
      buffered: (channel) =>
        new Observable<number>((subscriber) => {
          if (this.closeInfo !== undefined) {
            subscriber.next(0);
            subscriber.complete();
            return undefined;
          }
          subscriber.next(channel.sending.bufferedBytes);
          return channel.buffered$.subscribe(subscriber);
        }),
      sendAborted: (error) => this.end(localClose(CloseReason.ShuttingDown, 'sender aborted', sendAborted(error))),
    };
  }

  /** Tells each open channel whose buffered bytes changed. */
  private channelsBufferedChanged(): void {
    const channels = this.channels;
    if (channels === undefined) return;
    for (const { api } of channels.values()) {
      if (api === undefined || api.lastBuffered === api.sending.bufferedBytes) continue;
      api.lastBuffered = api.sending.bufferedBytes;
      api.buffered$.next(api.lastBuffered);
    }
  }

  /** Queues a message from send$ (no `waiter`) or send() (its subscriber); undefined when it was refused. */
  private enqueue(
    message: Uint8Array,
    waiter: { complete(): void; error(error: unknown): void } | undefined,
    channel: SendChannel = this.sender.defaultChannel,
    ttl = 0,
  ): OutgoingMessage | undefined {
    if (this.closeInfo !== undefined || this.state === 'closing') {
      if (waiter !== undefined) waiter.error(this.closeInfo ? closedError(this.closeInfo) : new ConnectionClosedError('send$ already completed: the connection is closing'));
      else if (this.closeInfo !== undefined) {
        this.counters.sendsAfterClose++;
        this.onSendAfterClose?.(this.closeInfo);
      }
      return undefined;
    }
    const maxBufferedBytes = this.options.maxBufferedBytes;
    if (this.sender.bufferedBytes + message.length > maxBufferedBytes || !this.memory.claim(message.length, false)) {
      const { budget } = this.memory;
      const error = new SendBufferFullError(
        this.sender.bufferedBytes + message.length > maxBufferedBytes
          ? `a ${message.length}-byte message does not fit: ${this.sender.bufferedBytes} of maxBufferedBytes ${maxBufferedBytes} ` +
              `are waiting for acknowledgement; wait on bufferedBytes$ (or use send() with mergeMap) before sending more, or raise maxBufferedBytes`
          : `a ${message.length}-byte message does not fit in the listener's maxMemory (${budget.used} of ${budget.limit} bytes held ` +
              `for all its connections); send it once bufferedBytes + its size is at most maxBufferedBytes again, or raise maxMemory`,
      );
      if (waiter !== undefined) waiter.error(error);
      else this.end(localClose(CloseReason.ShuttingDown, 'sender overflowed its send buffer', error));
      return undefined;
    }
    this.sendClaimed += message.length;
    let queued: OutgoingMessage;
    try {
      queued = this.sender.enqueue(
        message,
        waiter && (() => waiter.complete()),
        waiter && ((error) => waiter.error(error)),
        channel,
        ttl,
        this.scheduler.now(),
      );
    } catch (e) {
      this.bufferedChanged(this.sender.bufferedBytes);
      const error = new MessageTooLargeError(`message of ${message.length} bytes needs more than 65535 packets: ${(e as Error).message}`);
      if (waiter !== undefined) waiter.error(error);
      else this.end(localClose(CloseReason.ShuttingDown, 'local error: message too large to send', error));
      return undefined;
    }
    this.counters.messagesSent++;
    this.bufferedSubject.next(this.sender.bufferedBytes);
    if (channel.id !== 0) this.channelsBufferedChanged();
    if (this.search !== undefined && message.length > this.search.payloadSize) this.largeQueued$.next();
    this.queued$.next();
    return queued;
  }

  /** The send buffer shrank (acknowledged or withdrawn messages): their bytes go back to the listener's memory. */
  private bufferedChanged(bytes: number): void {
    if (bytes < this.sendClaimed) {
      this.memory.release(this.sendClaimed - bytes);
      this.sendClaimed = bytes;
    }
    this.bufferedSubject.next(bytes);
    this.channelsBufferedChanged();
  }

  /** There is room again for data turned away: ask for it at once (REPEAT) rather than wait out the peer's backed-off timers. */
  private askForTurnedAway(): void {
    if (this.closeInfo !== undefined) return;
    const ranges = this.receiver.takeTurnedAway();
    if (ranges.length > 0) this.transmit({ type: PacketType.Repeat, connectionId: this.id, ranges });
  }

  /** The application consumed held messages: tell the peer once the window grew well past what it last heard. */
  private windowReopened(): void {
    if (this.closeInfo !== undefined) return;
    this.askForTurnedAway();
    const advertised = this.receiver.advertisedWindow;
    if (advertised === 0 || this.receiver.window - advertised >= Math.max(1, this.options.receiveWindow >> 2)) this.ackTriggers$.next(ACK_NOW);
  }

  private emit(event: ConnectionEvent): void {
    if (this.eventsSubject.observed) this.eventsSubject.next(event);
  }

  private finish(): void {
    if (this.closeInfo !== undefined) return;
    this.stateSubject.next('closing');
    this.queued$.complete(); // the retransmit pipeline completes once all is acknowledged
  }

  /** Sends a packet, keeping the counters; false when the address-validation budget holds it back. */
  private transmit(packet: Packet): boolean {
    if (!this.validation.validated && !this.validation.spend(encodedLength(packet))) return false;
    const counters = this.counters;
    counters.packetsSent++;
    counters.bytesSent += this.transmitDatagram(packet);
    switch (packet.type) {
      case PacketType.Data:
      case ChannelPacketType.ChannelData:
        this.lastDataAt = this.scheduler.now();
        break;
      case PacketType.DataAck:
        counters.acksSent++;
        this.receiver.advertisedWindow = packet.window;
        break;
      case PacketType.Repeat:
        counters.repeatsSent++;
        this.emit({ type: 'repeat-request', time: this.scheduler.now(), ranges: packet.ranges });
        break;
      case PacketType.Ping:
        counters.pingsSent++;
        this.emit({ type: 'ping', time: this.scheduler.now() });
        break;
    }
    return true;
  }

  /** The one way a connection ends, whatever ended it. */
  private end(ending: Ending): void {
    if (this.closeInfo !== undefined) return;
    const { reason, text, byPeer, error } = ending;
    const info: CloseInfo = { reason, text, byPeer, error };
    if (!byPeer && error instanceof ConnectionTimeoutError) this.emit({ type: 'ping-timeout', time: this.scheduler.now(), silentMs: error.silentMs });
    if (ending.notifyPeer) {
      const close: Packet = { type: PacketType.Close, connectionId: this.id, reason, text: truncateUtf8(text, MAX_CLOSE_TEXT_BYTES) };
      // CLOSE is never acknowledged, and a starter's socket does not linger to repeat it: a second
      // copy makes a lost CLOSE (and the peer's ping timeout instead of a clean end) much rarer.
      this.transmit(close);
      this.transmit(close);
    }
    this.closeInfo = info;
    this.subscriptions.unsubscribe(); // every pipeline, with its deadline
    this.sender.clear(closedError(info));
    this.receiver.clear();
    this.memory.close();
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
    this.inbox.end(error);
    if (this.channels !== undefined) {
      for (const { inbox, api } of this.channels.values()) {
        inbox.end(error);
        api?.buffered$.next(0);
        api?.buffered$.complete();
      }
    }
    this.onClosed?.(info);
  }

  /** `subject` while open; after the close, the value `last` gives, then complete: late subscribers still learn the end. */
  private afterClose<T, V extends T>(subject: Subject<T>, last: (info: CloseInfo) => V): Observable<T> {
    return new Observable<T>((subscriber) => {
      if (this.closeInfo === undefined) return subject.subscribe(subscriber);
      subscriber.next(last(this.closeInfo));
      subscriber.complete();
      return undefined;
    });
  }
}

/** Channel 0's options: the connection's own stream. */
const CHANNEL_ZERO = resolveChannelOptions({});

function closedError(info: CloseInfo): RudpError {
  if (info.error !== undefined) return info.error;
  const by = info.byPeer ? 'by the peer' : 'on this side';
  return new ConnectionClosedError(`the connection was closed ${by} (reason ${info.reason}${info.text === '' ? '' : `: ${info.text}`}) before the message was acknowledged`, info.reason);
}

function sendAborted(err: unknown): RudpError {
  return new ConnectionClosedError(`send$ errored: ${err instanceof Error ? err.message : String(err)}`, CloseReason.ShuttingDown);
}

function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text) <= maxBytes) return text;
  let out = text.slice(0, maxBytes);
  while (Buffer.byteLength(out) > maxBytes) out = out.slice(0, -1);
  return out;
}
