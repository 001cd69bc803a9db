import { Observable, Subject, type ObservableInput } from 'rxjs';
import { MAX_TTL_MS } from '../../wire/channels';
import type { Channel, ChannelOptions, ReceiveOptions, SendOptions } from '../connection-api';
import { InvalidOptionError } from '../errors';
import type { Inbox } from '../inbox';
import type { OutgoingMessage } from '../sender';
import type { SendChannel } from './send-queues';

/** What a channel needs from its connection: the connection's one send path and close state. */
export interface ChannelHost {
  /** Queues a message on `channel`; undefined when it was refused (the waiter, if any, was told why). */
  enqueue(message: Uint8Array, waiter: { complete(): void; error(error: unknown): void } | undefined, channel: SendChannel, ttl: number): OutgoingMessage | undefined;
  /** A send() was unsubscribed before its acknowledgement: withdraw the message, or abandon it if it has a ttl. */
  cancel(queued: OutgoingMessage): void;
  /** The channel's buffered bytes, replayed, then 0 and complete after the close. */
  buffered(channel: ConnectionChannel): Observable<number>;
  /** A channel's send$ errored: the connection closes, as when its own send$ errors. */
  sendAborted(error: unknown): void;
}

/** Options after defaults, as the first `channel(id, …)` call set them. */
export interface ResolvedChannelOptions {
  readonly ordered: boolean;
  readonly priority: number;
  /** 0: reliable. */
  readonly ttl: number;
}

export function resolveTtl(option: string, ttl: unknown): number {
  if (ttl === undefined) return 0;
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_MS) {
    throw new InvalidOptionError(option, ttl, `an integer number of ms from 1 to ${MAX_TTL_MS}, or undefined for a reliable message`);
  }
  return ttl;
}

export function resolveChannelOptions(options: ChannelOptions): ResolvedChannelOptions {
  const ordered = options.ordered ?? true;
  if (typeof ordered !== 'boolean') throw new InvalidOptionError('ordered', ordered, 'true or false');
  const priority = options.priority ?? 0;
  if (typeof priority !== 'number' || !Number.isInteger(priority) || priority < -1000 || priority > 1000) {
    throw new InvalidOptionError('priority', priority, 'an integer from -1000 to 1000 (higher is sent first)');
  }
  return { ordered, priority, ttl: resolveTtl('ttl', options.ttl) };
}

export function sameOptions(a: ResolvedChannelOptions, b: ResolvedChannelOptions): boolean {
  return a.ordered === b.ordered && a.priority === b.priority && a.ttl === b.ttl;
}

/** A channel other than 0 (docs/streams.md, Channels): its own inbox and send queue on the connection's one sequence space. */
export class ConnectionChannel implements Channel {
  readonly send$ = new Subject<Uint8Array>();
  /** The last value bufferedBytes$ gave, so the connection tells only channels whose figure changed. */
  lastBuffered = 0;
  readonly buffered$ = new Subject<number>();

  constructor(
    readonly id: number,
    readonly options: ResolvedChannelOptions,
    readonly sending: SendChannel,
    private readonly inbox: Inbox,
    private readonly host: ChannelHost,
  ) {
    this.send$.subscribe({
      next: (message) => void host.enqueue(message, undefined, sending, options.ttl),
      error: (error: unknown) => host.sendAborted(error),
    });
  }

  get messages$(): Observable<Uint8Array> {
    return this.inbox.messages$;
  }

  receive<R>(handler: (message: Uint8Array) => ObservableInput<R>, options: ReceiveOptions = {}): Observable<R> {
    return this.inbox.receive(handler, options.concurrency ?? 1);
  }

  send(message: Uint8Array, options: SendOptions = {}): Observable<void> {
    const ttl = options.ttl === undefined ? this.options.ttl : resolveTtl('ttl', options.ttl);
    return new Observable<void>((subscriber) => {
      const queued = this.host.enqueue(message, subscriber, this.sending, ttl);
      return () => {
        if (queued !== undefined && !queued.settled) this.host.cancel(queued);
      };
    });
  }

  get bufferedBytes$(): Observable<number> {
    return this.host.buffered(this);
  }
}

/** The connection's own stream seen as a channel: channel 0, ordered, reliable, priority 0. */
export class DefaultChannel implements Channel {
  readonly id = 0;

  constructor(private readonly connection: Pick<Channel, 'messages$' | 'receive' | 'send$' | 'bufferedBytes$'> & { send(message: Uint8Array): Observable<void> }) {}

  get messages$(): Observable<Uint8Array> {
    return this.connection.messages$;
  }

  receive<R>(handler: (message: Uint8Array) => ObservableInput<R>, options?: ReceiveOptions): Observable<R> {
    return this.connection.receive(handler, options);
  }

  get send$(): Subject<Uint8Array> {
    return this.connection.send$;
  }

  send(message: Uint8Array, options: SendOptions = {}): Observable<void> {
    if (options.ttl !== undefined) throw new InvalidOptionError('ttl', options.ttl, 'none on channel 0, which is reliable: send messages with a ttl on another channel');
    return this.connection.send(message);
  }

  get bufferedBytes$(): Observable<number> {
    return this.connection.bufferedBytes$;
  }
}
