/**
 * An in-memory UDP network driven by an injected RxJS scheduler: virtual time under
 * `rxjs/testing`'s TestScheduler / VirtualTimeScheduler, real time under `asyncScheduler`.
 *
 * Each host is an address string ('10.0.0.1'); each host has its own port space. Datagrams sent
 * from host A to host B go through the A→B link impairment (loss, delay, jitter, duplication,
 * reordering, deterministic drops), decided by a seeded PRNG, then are delivered with ONE
 * `scheduler.schedule` per copy. No timers live beyond the datagrams in flight.
 */
import { Observable, Subject, type SchedulerLike } from 'rxjs';
import type { BindOptions, Datagram, DatagramSocket, SocketAddress, SocketFactory } from '../core/transport';
import { Random, deriveSeed } from './random';

/** One end of a datagram's trip. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** A datagram as the wire sees it (what a `drop` predicate is shown). */
export interface WireDatagram {
  readonly from: Endpoint;
  readonly to: Endpoint;
  /** The network's private copy; do not modify it. */
  readonly data: Uint8Array;
  /** Scheduler time when it was sent. */
  readonly time: number;
}

export interface LinkImpairment {
  /** Probability 0..1 that a datagram is dropped. Default 0. */
  readonly loss?: number;
  /** One-way delay, ms. Default 0. */
  readonly delay?: number;
  /** Extra random delay per datagram, uniform over the whole ms 0..floor(jitter). Default 0. */
  readonly jitter?: number;
  /** Probability 0..1 that a datagram is delivered twice (the copy gets its own jitter/reorder). Default 0. */
  readonly duplicate?: number;
  /** Probability 0..1 that a datagram is held back by an extra `reorderDelay`, so later ones overtake it. Default 0. */
  readonly reorder?: number;
  /** Extra hold-back for reordered datagrams, ms. Default `delay + floor(jitter) + 1`. */
  readonly reorderDelay?: number;
  /**
   * Keep each direction first-in first-out despite jitter, as a real queue does: a datagram never
   * arrives before one sent earlier on the same direction (it waits for it). Default false.
   */
  readonly fifo?: boolean;
  /**
   * Deterministic drop: called for every datagram on the link with its 0-based index on that
   * direction (host pair); returning true drops it (counted as `dropped`, fate 'lost').
   */
  readonly drop?: (datagram: WireDatagram, index: number) => boolean;
  /**
   * A bottleneck: the direction carries at most this many payload bytes per second, one datagram
   * after another (its transmission time adds to the delay, and datagrams queue behind each
   * other, first-in first-out). Default: unlimited.
   */
  readonly rate?: number;
  /** Bytes the bottleneck's queue holds (drop-tail: a datagram that does not fit is lost). Default: unbounded. Needs `rate`. */
  readonly queue?: number;
}

export interface VirtualNetworkOptions {
  readonly scheduler: SchedulerLike;
  /** Seed for the impairment PRNG (each direction gets its own stream derived from it). Default 1. */
  readonly seed?: number;
  /** Impairment for every direction without its own `setLink`. Default: a perfect link. */
  readonly default?: LinkImpairment;
  /** Largest datagram payload accepted by send(); larger ones fail with EMSGSIZE. Default 65507. */
  readonly maxDatagramSize?: number;
}

/** What happened to a datagram when it was put on the wire. */
export type TrafficFate = 'delivered' | 'lost' | 'duplicated';

export interface TrafficEvent extends WireDatagram {
  /** 'delivered' = one copy scheduled, 'duplicated' = two, 'lost' = none. A scheduled copy still
   *  counts as `unreachable` if no socket is bound at the destination when it arrives. */
  readonly fate: TrafficFate;
  /** 0-based index of this datagram on its direction (host pair). */
  readonly index: number;
  /** Scheduler times at which the copies arrive: [] when lost, two entries when duplicated. */
  readonly arrivals: readonly number[];
}

export interface TrafficCounters {
  /** Datagrams put on the wire by send() (duplicates not included). */
  readonly sent: number;
  /** Copies handed to a bound socket. */
  readonly delivered: number;
  /** Datagrams dropped by the impairment (`loss` or `drop`). */
  readonly dropped: number;
  /** Datagrams delivered twice (each adds one extra copy). */
  readonly duplicated: number;
  /** Copies that arrived where no socket was bound (like UDP to a closed port). */
  readonly unreachable: number;
  /** Copies scheduled but not yet arrived. Always sent + duplicated - delivered - dropped - unreachable. */
  readonly inFlight: number;
}

export interface LinkStats extends TrafficCounters {
  readonly from: string;
  readonly to: string;
}

export interface NetworkStats {
  readonly total: TrafficCounters;
  /** Every direction that carried at least one datagram, in order of first use. */
  readonly links: readonly LinkStats[];
}

/** An Error shaped like Node's system errors (`code`, `syscall`, `address`, `port`). */
export interface VirtualNetworkError extends Error {
  readonly code: string;
  readonly syscall?: string;
  readonly address?: string;
  readonly port?: number;
}

const EPHEMERAL_FIRST = 49152;
const EPHEMERAL_LAST = 65535;
const DEFAULT_HOST = '127.0.0.1';

interface NormalizedImpairment {
  readonly loss: number;
  readonly delay: number;
  readonly jitterSpan: number; // floor(jitter) + 1: the number of possible whole-ms jitter values
  readonly duplicate: number;
  readonly reorder: number;
  readonly reorderDelay: number;
  readonly fifo: boolean;
  readonly drop: ((datagram: WireDatagram, index: number) => boolean) | undefined;
  /** Bytes per ms; Infinity = no bottleneck. */
  readonly bytesPerMs: number;
  readonly queue: number;
}

interface MutableCounters {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  unreachable: number;
}

interface Link {
  readonly from: string;
  readonly to: string;
  readonly random: Random;
  /** Set by setLink; undefined = follow the network default. */
  override: NormalizedImpairment | undefined;
  index: number;
  /** Arrival time of the latest first copy scheduled on this direction (for `fifo`). */
  lastArrival: number;
  /** When the bottleneck has sent everything queued on it (for `rate`). */
  busyUntil: number;
  readonly counters: MutableCounters;
}

interface Host {
  readonly address: string;
  readonly family: 'IPv4' | 'IPv6';
  readonly sockets: Map<number, VirtualSocket>;
  /** Outgoing directions from this host, by destination address. */
  readonly links: Map<string, Link>;
  nextEphemeral: number;
}

function probability(name: string, value: number | undefined): number {
  if (value === undefined) return 0;
  if (!(value >= 0 && value <= 1)) throw new RangeError(`LinkImpairment.${name} must be within 0..1, got ${value}`);
  return value;
}

function duration(name: string, value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!(value >= 0 && Number.isFinite(value))) {
    throw new RangeError(`LinkImpairment.${name} must be a finite number of ms >= 0, got ${value}`);
  }
  return value;
}

function positive(name: string, value: number | undefined): number {
  if (value === undefined) return Infinity;
  if (!(value > 0)) throw new RangeError(`LinkImpairment.${name} must be a positive number, got ${value}`);
  return value;
}

function normalize(impairment: LinkImpairment): NormalizedImpairment {
  const delay = duration('delay', impairment.delay) ?? 0;
  const jitter = Math.floor(duration('jitter', impairment.jitter) ?? 0);
  return {
    loss: probability('loss', impairment.loss),
    delay,
    jitterSpan: jitter + 1,
    duplicate: probability('duplicate', impairment.duplicate),
    reorder: probability('reorder', impairment.reorder),
    reorderDelay: duration('reorderDelay', impairment.reorderDelay) ?? delay + jitter + 1,
    fifo: impairment.fifo === true,
    drop: impairment.drop,
    bytesPerMs: positive('rate', impairment.rate) / 1000,
    queue: positive('queue', impairment.queue),
  };
}

function systemError(code: string, message: string, extra: { syscall?: string; address?: string; port?: number }): VirtualNetworkError {
  return Object.assign(new Error(message), { code }, extra);
}

function zeroCounters(): MutableCounters {
  return { sent: 0, delivered: 0, dropped: 0, duplicated: 0, unreachable: 0 };
}

function snapshot(c: MutableCounters): TrafficCounters {
  return {
    sent: c.sent,
    delivered: c.delivered,
    dropped: c.dropped,
    duplicated: c.duplicated,
    unreachable: c.unreachable,
    inFlight: c.sent + c.duplicated - c.delivered - c.dropped - c.unreachable,
  };
}

function linkKey(from: string, to: string): string {
  return `${from}\n${to}`;
}

type Transmit = (
  socket: VirtualSocket,
  data: Uint8Array,
  port: number,
  address: string,
  onError: ((error: Error) => void) | undefined,
) => void;

class VirtualSocket implements DatagramSocket {
  private readonly incoming = new Subject<Datagram>();
  readonly datagrams$: Observable<Datagram> = this.incoming.asObservable();
  closed = false;
  private readonly local: SocketAddress;

  constructor(
    private readonly transmit: Transmit,
    readonly host: Host,
    readonly port: number,
  ) {
    this.local = { address: host.address, port, family: host.family };
  }

  send(data: Uint8Array, port: number, address: string, onError?: (error: Error) => void): void {
    this.transmit(this, data, port, address, onError);
  }

  address(): SocketAddress {
    return this.local;
  }

  deliver(datagram: Datagram): void {
    this.incoming.next(datagram);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unbind();
    this.incoming.complete();
  }

  fail(error: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.unbind();
    this.incoming.error(error);
  }

  private unbind(): void {
    if (this.host.sockets.get(this.port) === this) this.host.sockets.delete(this.port);
  }
}

export class VirtualNetwork {
  /** The scheduler the network (and the endpoints made on it) run on. */
  readonly scheduler: SchedulerLike;
  private readonly seed: number;
  private readonly maxDatagramSize: number;
  private defaultImpairment: NormalizedImpairment;
  private readonly hosts = new Map<string, Host>();
  /** Every link ever created, in creation order (for stats()). */
  private readonly allLinks: Link[] = [];
  private readonly total: MutableCounters = zeroCounters();
  private readonly traffic = new Subject<TrafficEvent>();

  /**
   * Every datagram put on the wire (including lost ones), at send time. Hot; never completes.
   * Events are built only while someone subscribes.
   */
  readonly traffic$: Observable<TrafficEvent> = this.traffic.asObservable();

  /** The send path handed to sockets (keeps it off the public surface). */
  private readonly transmit: Transmit = (socket, data, port, address, onError) => this.send(socket, data, port, address, onError);

  constructor(options: VirtualNetworkOptions) {
    this.scheduler = options.scheduler;
    this.seed = options.seed ?? 1;
    this.maxDatagramSize = options.maxDatagramSize ?? 65507;
    this.defaultImpairment = normalize(options.default ?? {});
  }

  /**
   * A SocketFactory binding sockets at `host` (default '127.0.0.1'). Factories for the same host
   * share its port space. Port 0 picks a free ephemeral port (counting up from 49152, wrapping).
   * `BindOptions.address`, if given, must be `host` or a wildcard ('0.0.0.0', '::'). Binding is
   * synchronous: the socket is emitted on subscribe; unsubscribing closes it (frees the port,
   * completes `datagrams$`). Bind failures error the Observable with a Node-style Error whose
   * `code` is EADDRINUSE, EADDRNOTAVAIL or ERR_SOCKET_BAD_PORT.
   */
  socketFactory(host: string = DEFAULT_HOST): SocketFactory {
    if (typeof host !== 'string' || host === '') throw new TypeError('VirtualNetwork.socketFactory: host must be a non-empty string');
    return (options: BindOptions) =>
      new Observable<DatagramSocket>((subscriber) => {
        let socket: VirtualSocket;
        try {
          socket = this.bind(host, options);
        } catch (error) {
          subscriber.error(error);
          return undefined;
        }
        subscriber.next(socket);
        return () => socket.close();
      });
  }

  /** Impairment from host `from` to host `to` (this direction only); replaces the default for it. Applies to datagrams sent afterwards. */
  setLink(from: string, to: string, impairment: LinkImpairment): void {
    this.link(from, to).override = normalize(impairment);
  }

  /** Makes the `from`→`to` direction follow the default again. */
  clearLink(from: string, to: string): void {
    this.link(from, to).override = undefined;
  }

  /** Replaces the default impairment (for directions without `setLink`). Applies to datagrams sent afterwards. */
  setDefault(impairment: LinkImpairment): void {
    this.defaultImpairment = normalize(impairment);
  }

  /** A snapshot of the counters: total and per direction. */
  stats(): NetworkStats {
    return {
      total: snapshot(this.total),
      links: this.allLinks.filter((l) => l.counters.sent > 0).map((l) => ({ from: l.from, to: l.to, ...snapshot(l.counters) })),
    };
  }

  /** A snapshot of one direction's counters (all zero if it carried nothing). */
  linkStats(from: string, to: string): TrafficCounters {
    const link = this.hosts.get(from)?.links.get(to);
    return snapshot(link ? link.counters : zeroCounters());
  }

  /** Whether a socket is bound at (address, port). */
  isBound(address: string, port: number): boolean {
    return this.hosts.get(address)?.sockets.has(port) ?? false;
  }

  /**
   * Simulates a socket failure: the socket at (address, port) is unbound and its `datagrams$`
   * errors with `error`. Returns false if nothing is bound there.
   */
  failSocket(address: string, port: number, error: Error = systemError('ECONNRESET', `socket ${address}:${port} failed`, { address, port })): boolean {
    const socket = this.hosts.get(address)?.sockets.get(port);
    if (!socket) return false;
    socket.fail(error);
    return true;
  }

  private host(address: string): Host {
    let host = this.hosts.get(address);
    if (!host) {
      host = {
        address,
        family: address.includes(':') ? 'IPv6' : 'IPv4',
        sockets: new Map(),
        links: new Map(),
        nextEphemeral: EPHEMERAL_FIRST,
      };
      this.hosts.set(address, host);
    }
    return host;
  }

  private link(from: string, to: string): Link {
    const host = this.host(from);
    let link = host.links.get(to);
    if (!link) {
      link = {
        from,
        to,
        random: new Random(deriveSeed(this.seed, linkKey(from, to))),
        override: undefined,
        index: 0,
        lastArrival: -Infinity,
        busyUntil: -Infinity,
        counters: zeroCounters(),
      };
      host.links.set(to, link);
      this.allLinks.push(link);
    }
    return link;
  }

  private bind(address: string, options: BindOptions): VirtualSocket {
    const wanted = options.address;
    if (wanted !== undefined && wanted !== address && wanted !== '0.0.0.0' && wanted !== '::') {
      throw systemError('EADDRNOTAVAIL', `bind EADDRNOTAVAIL ${wanted}:${options.port ?? 0} (this factory binds on ${address})`, {
        syscall: 'bind',
        address: wanted,
        port: options.port ?? 0,
      });
    }
    const requested = options.port ?? 0;
    if (!Number.isInteger(requested) || requested < 0 || requested > 65535) {
      throw systemError('ERR_SOCKET_BAD_PORT', `Port should be >= 0 and < 65536. Received ${requested}.`, {});
    }
    const host = this.host(address);
    let port = requested;
    if (port === 0) {
      port = this.freePort(host);
    } else if (host.sockets.has(port)) {
      throw systemError('EADDRINUSE', `bind EADDRINUSE ${address}:${port}`, { syscall: 'bind', address, port });
    }
    const socket = new VirtualSocket(this.transmit, host, port);
    host.sockets.set(port, socket);
    return socket;
  }

  private freePort(host: Host): number {
    const range = EPHEMERAL_LAST - EPHEMERAL_FIRST + 1;
    for (let i = 0; i < range; i++) {
      const port = host.nextEphemeral;
      host.nextEphemeral = port === EPHEMERAL_LAST ? EPHEMERAL_FIRST : port + 1;
      if (!host.sockets.has(port)) return port;
    }
    throw systemError('EADDRINUSE', `bind EADDRINUSE ${host.address}:0 (no free ephemeral port)`, {
      syscall: 'bind',
      address: host.address,
      port: 0,
    });
  }

  private reportLater(onError: ((error: Error) => void) | undefined, error: Error): void {
    if (onError) this.scheduler.schedule(() => onError(error), 0);
  }

  private send(
    socket: VirtualSocket,
    data: Uint8Array,
    port: number,
    address: string,
    onError: ((error: Error) => void) | undefined,
  ): void {
    if (socket.closed) {
      this.reportLater(onError, systemError('ERR_SOCKET_DGRAM_NOT_RUNNING', 'Not running', { syscall: 'send' }));
      return;
    }
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      this.reportLater(onError, systemError('ERR_SOCKET_BAD_PORT', `Port should be > 0 and < 65536. Received ${port}.`, {}));
      return;
    }
    if (typeof address !== 'string' || address === '') {
      this.reportLater(onError, systemError('ERR_INVALID_ARG_TYPE', `address must be a non-empty string`, {}));
      return;
    }
    if (data.byteLength > this.maxDatagramSize) {
      this.reportLater(onError, systemError('EMSGSIZE', `send EMSGSIZE ${address}:${port}`, { syscall: 'send', address, port }));
      return;
    }

    const host = socket.host;
    const link = host.links.get(address) ?? this.link(host.address, address);
    const imp = link.override ?? this.defaultImpairment;
    const index = link.index++;
    const now = this.scheduler.now();
    const copy = new Uint8Array(data); // the sender may reuse its buffer
    link.counters.sent++;
    this.total.sent++;

    // A fixed number of draws per datagram: the fate of the n-th datagram on a direction depends
    // only on the seed, n and the impairment, not on other traffic or on which knobs are zero.
    const random = link.random;
    const uLoss = random.next();
    const uJitter = random.next();
    const uReorder = random.next();
    const uDuplicate = random.next();
    const uJitter2 = random.next();
    const uReorder2 = random.next();

    const from: Endpoint = { address: host.address, port: socket.port };
    let lost = uLoss < imp.loss;
    if (!lost && imp.drop) lost = imp.drop({ from, to: { address, port }, data: copy, time: now }, index);
    // The bottleneck: the queue ahead of this datagram, in bytes, is what is still to be sent.
    let queued = 0;
    if (!lost && imp.bytesPerMs !== Infinity) {
      const backlog = Math.max(0, link.busyUntil - now) * imp.bytesPerMs;
      if (backlog + copy.byteLength > imp.queue) lost = true;
      else {
        link.busyUntil = Math.max(link.busyUntil, now) + copy.byteLength / imp.bytesPerMs;
        queued = link.busyUntil - now;
      }
    }

    let first = -1;
    let second = -1;
    if (lost) {
      link.counters.dropped++;
      this.total.dropped++;
    } else {
      const sender: Datagram = { data: copy, address: host.address, port: socket.port };
      first = queued + imp.delay + Math.floor(uJitter * imp.jitterSpan) + (uReorder < imp.reorder ? imp.reorderDelay : 0);
      if (imp.fifo) {
        first = Math.max(first, link.lastArrival - now);
        link.lastArrival = now + first;
      }
      this.schedule(link, sender, address, port, first);
      if (uDuplicate < imp.duplicate) {
        link.counters.duplicated++;
        this.total.duplicated++;
        second = queued + imp.delay + Math.floor(uJitter2 * imp.jitterSpan) + (uReorder2 < imp.reorder ? imp.reorderDelay : 0);
        this.schedule(link, { data: new Uint8Array(copy), address: host.address, port: socket.port }, address, port, second);
      }
    }

    if (this.traffic.observed) {
      this.traffic.next({
        from,
        to: { address, port },
        data: copy,
        time: now,
        index,
        fate: lost ? 'lost' : second >= 0 ? 'duplicated' : 'delivered',
        arrivals: lost ? [] : second >= 0 ? [now + first, now + second] : [now + first],
      });
    }
  }

  private schedule(link: Link, datagram: Datagram, address: string, port: number, delay: number): void {
    // Always through the scheduler, even with delay 0: delivery is never re-entrant inside send().
    this.scheduler.schedule(() => this.arrive(link, datagram, address, port), delay);
  }

  private arrive(link: Link, datagram: Datagram, address: string, port: number): void {
    const socket = this.hosts.get(address)?.sockets.get(port);
    if (!socket || socket.closed) {
      link.counters.unreachable++;
      this.total.unreachable++;
      return;
    }
    link.counters.delivered++;
    this.total.delivered++;
    socket.deliver(datagram);
  }
}
