import type { SchedulerLike } from 'rxjs';
import { MAX_DATAGRAM_SIZE, MIN_DATAGRAM_SIZE } from '../wire/packet';
import { InvalidOptionError } from './errors';
import type { ProbeSetting } from './path-mtu/ceiling';

/** Protocol options (PROTOCOL.md §10); every field is optional and defaults as documented there. */
export interface ProtocolOptions {
  /** Initial and largest retransmission timeout, and the CONNECT retry period, in ms. Default 200. */
  deliveryTimeout?: number;
  /** Idle time before a PING, and the period between PINGs, in ms. Default 1000. */
  pingInterval?: number;
  /** Unanswered PINGs in a row that declare the peer dead. Default 5. */
  pingPacketCount?: number;
  /** How long a starter tries to connect, in ms. Default 5000. */
  connectTimeout?: number;
  /**
   * The version-1 datagram size, 576..65507: the largest UDP payload sent or accepted on a
   * connection without path-MTU probing, and where probing starts. Default 1200.
   */
  maxDatagramSize?: number;
  /**
   * Path-MTU probing (docs/protocol.md §13.3), with a peer that supports it: DATA starts at
   * `maxDatagramSize` and grows to the largest datagram PROBEs show the path carries, up to
   * 'auto' (default): 65507 bytes to a loopback address, 1472 (IPv4) or 1452 (IPv6) elsewhere
   * (Node cannot forbid fragmentation, so larger probes would pass fragmented); a number
   * (576..65507, UDP payload bytes): up to that, for a path known to carry it (jumbo frames: 8972);
   * 'off': the version-1 size throughout, and the extension is neither offered nor accepted.
   */
  pathMtu?: ProbeSetting;
  /**
   * DATA packets buffered beyond the cumulative ack, 1..65535. Default 4096 (PROTOCOL.md §10
   * says 1024: 1.2 MB, which holds a 20 ms path to ~60 MB/s without loss and ~20 MB/s at 2 %).
   */
  receiveWindow?: number;
  /** Largest message accepted, in bytes. Default 16 MiB. */
  maxMessageSize?: number;
  /** How long a gap in the sequence may last before REPEAT asks for it, in ms. Default 5, at most deliveryTimeout / 4. */
  repeatDelay?: number;
  /** Bytes of messages queued or unacknowledged beyond which `send()` and `send$` refuse more. Default 64 MiB. */
  maxBufferedBytes?: number;
  /**
   * 'auto' (default): after a loss, small messages (DATA of at most 256 bytes) sent while nothing
   * else is queued, and resends the peer waits for (of any size while nothing else is queued), go
   * out twice, for 30 s, which cuts their latency under loss; 'off': never.
   */
  redundancy?: 'auto' | 'off';
  /**
   * 'bbr' (default): model-based (bandwidth and minimum RTT, paced; random loss is not read as
   * congestion); 'newreno': loss-based, halves its window on every loss round (RFC 9002 §7), for
   * comparison or for paths where only a loss-based flow is welcome.
   */
  congestionControl?: 'bbr' | 'newreno';
  /** Where time comes from. Default: a real-time scheduler with sub-millisecond `now()`. */
  scheduler?: SchedulerLike;
}

export type ResolvedProtocolOptions = Required<Omit<ProtocolOptions, 'scheduler'>>;

export const DEFAULTS: ResolvedProtocolOptions = {
  deliveryTimeout: 200,
  pingInterval: 1000,
  pingPacketCount: 5,
  connectTimeout: 5000,
  maxDatagramSize: 1200,
  pathMtu: 'auto',
  receiveWindow: 4096,
  maxMessageSize: 16 * 1024 * 1024,
  repeatDelay: 5,
  maxBufferedBytes: 64 * 1024 * 1024,
  redundancy: 'auto',
  congestionControl: 'bbr',
};

function integer(name: string, value: number, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(name, value, `an integer from ${min} to ${max}`);
  }
  return value;
}

/** Fills defaults and rejects out-of-range values with an error naming the option. */
export function resolveProtocolOptions(options: ProtocolOptions = {}): ResolvedProtocolOptions {
  const o = { ...DEFAULTS, ...stripUndefined(options) };
  const deliveryTimeout = integer('deliveryTimeout', o.deliveryTimeout, 1, 600_000);
  return {
    deliveryTimeout,
    pingInterval: integer('pingInterval', o.pingInterval, 1, 3_600_000),
    pingPacketCount: integer('pingPacketCount', o.pingPacketCount, 1, 1000),
    connectTimeout: integer('connectTimeout', o.connectTimeout, 1, 3_600_000),
    maxDatagramSize: integer('maxDatagramSize', o.maxDatagramSize, MIN_DATAGRAM_SIZE, MAX_DATAGRAM_SIZE),
    pathMtu: probeSetting(o.pathMtu),
    receiveWindow: integer('receiveWindow', o.receiveWindow, 1, 65535),
    maxMessageSize: integer('maxMessageSize', o.maxMessageSize, 0, 2 ** 31 - 1),
    repeatDelay: Math.min(
      integer('repeatDelay', o.repeatDelay, 0, 600_000),
      Math.max(1, Math.floor(deliveryTimeout / 4)),
    ),
    maxBufferedBytes: integer('maxBufferedBytes', o.maxBufferedBytes, 1, Number.MAX_SAFE_INTEGER),
    redundancy: oneOf('redundancy', o.redundancy, ['auto', 'off'] as const),
    congestionControl: oneOf('congestionControl', o.congestionControl, ['bbr', 'newreno'] as const),
  };
}

function probeSetting(value: unknown): ProbeSetting {
  if (value === 'auto' || value === 'off') return value;
  if (typeof value === 'number' && Number.isInteger(value) && value >= MIN_DATAGRAM_SIZE && value <= MAX_DATAGRAM_SIZE) return value;
  throw new InvalidOptionError('pathMtu', value, `'auto', 'off' or an integer from ${MIN_DATAGRAM_SIZE} to ${MAX_DATAGRAM_SIZE}`);
}

function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) throw new InvalidOptionError(name, value, allowed.map((a) => `'${a}'`).join(' or '));
  return value as T;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined && k !== 'scheduler') (out as Record<string, unknown>)[k] = v;
  return out;
}
