/**
 * Link models for the in-process (VirtualNetwork) benchmarks.
 *
 * - Exact loss: `k` of every `block` datagrams per direction are dropped, drawn without
 *   replacement (a seeded shuffle of each block of indices), as KCP's test harness does. Uses the
 *   kit's `drop(datagram, index)` predicate.
 * - FIFO jitter: the kit draws each datagram's jitter independently, so under jitter later
 *   datagrams overtake earlier ones (it reorders). KCP's and a real path's queues do not. Here the
 *   jitter is applied in a socket wrapper instead: each datagram is handed to the network at
 *   max(previous hand-off, now + uniform 0..jitter ms) on its direction, and the network adds the
 *   constant one-way delay (equal delays keep the order). So: one-way delay = delay + jitter, FIFO.
 * - Accounting: for every datagram that is not dropped the model remembers when it was sent and
 *   when it was due; the receiving socket's wrapper matches arrivals in order and records how late
 *   the real-time timers delivered it (timer lateness on a busy machine inflates every latency).
 */
import { map, type SchedulerLike } from 'rxjs';
import type { Datagram, DatagramSocket, SocketFactory } from '../../lib/index';
import type { WireDatagram } from '../../lib/testing/index';
import { mulberry32, deriveSeed } from '../../lib/testing/index';

export interface LossSpec {
  /** Datagrams dropped per block, per direction. */
  readonly drop: number;
  /** Block size. */
  readonly block: number;
}

export interface LinkModelOptions {
  readonly scheduler: SchedulerLike;
  readonly seed: number;
  /** Constant one-way delay the network adds (ms); must equal the `delay` given to the kit. */
  readonly delay: number;
  /** FIFO jitter: extra 0..jitter whole ms per datagram (uniform), applied in the socket wrapper. */
  readonly jitter: number;
  readonly loss: LossSpec;
}

interface Pending {
  readonly sentAt: number;
  readonly due: number;
}

interface Held {
  readonly target: number;
  readonly data: Uint8Array;
  readonly port: number;
  readonly address: string;
  readonly onError: ((error: Error) => void) | undefined;
}

export class LinkModel {
  /** Realized one-way delay (send → arrival) of every delivered datagram, ms. */
  readonly oneWay: number[] = [];
  /** How much later than due each datagram arrived, ms (timer lateness). */
  readonly lateness: number[] = [];
  readonly dropped = new Map<string, number>();
  private readonly dropSets = new Map<string, Set<number>>();
  private readonly pending = new Map<string, Pending[]>();
  private current: Pending | undefined;
  private readonly jitterRandom: () => number;

  constructor(private readonly options: LinkModelOptions) {
    this.jitterRandom = mulberry32(deriveSeed(options.seed, 'jitter'));
  }

  /** The `drop` predicate for the kit's LinkImpairment. */
  readonly drop = (datagram: WireDatagram, index: number): boolean => {
    const key = `${datagram.from.address}>${datagram.to.address}`;
    const { drop, block } = this.options.loss;
    const b = Math.floor(index / block);
    const setKey = `${key}#${b}`;
    let set = this.dropSets.get(setKey);
    if (set === undefined) {
      // Fisher–Yates over the block's indices with a seed per (direction, block); keep the first `drop`.
      const random = mulberry32(deriveSeed(this.options.seed, setKey));
      const order = Array.from({ length: block }, (_, i) => i);
      for (let i = block - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      set = new Set(order.slice(0, drop));
      this.dropSets.set(setKey, set);
      this.dropSets.delete(`${key}#${b - 2}`); // keep memory flat
    }
    const lost = set.has(index - b * block);
    if (lost) this.dropped.set(key, (this.dropped.get(key) ?? 0) + 1);
    else if (this.current !== undefined) this.queue(key).push(this.current);
    return lost;
  };

  /** Wraps a kit socket factory for `host`: FIFO jitter on sends, accounting on arrivals. */
  wrap(host: string, inner: SocketFactory): SocketFactory {
    return (bindOptions) =>
      inner(bindOptions).pipe(
        map((socket): DatagramSocket => {
          const queues = new Map<string, { held: Held[]; last: number; armed: boolean }>();
          const handOff = (h: Held, sentAt: number): void => {
            this.current = { sentAt, due: h.target + this.options.delay };
            socket.send(h.data, h.port, h.address, h.onError);
            this.current = undefined;
          };
          const sentAt = new WeakMap<Held, number>();
          const flush = (key: string): void => {
            const q = queues.get(key)!;
            q.armed = false;
            const now = this.options.scheduler.now();
            while (q.held.length > 0 && q.held[0]!.target <= now + 0.5) {
              const h = q.held.shift()!;
              handOff(h, sentAt.get(h)!);
            }
            if (q.held.length > 0) arm(key, q);
          };
          const arm = (key: string, q: { held: Held[]; armed: boolean }): void => {
            if (q.armed) return;
            q.armed = true;
            const delay = Math.max(0, Math.ceil(q.held[0]!.target - this.options.scheduler.now()));
            this.options.scheduler.schedule(() => flush(key), delay);
          };
          return {
            datagrams$: socket.datagrams$.pipe(
              map((d: Datagram) => {
                const p = this.queue(`${d.address}>${host}`).shift();
                if (p !== undefined) {
                  const now = this.options.scheduler.now();
                  this.oneWay.push(now - p.sentAt);
                  this.lateness.push(now - p.due);
                }
                return d;
              }),
            ),
            address: () => socket.address(),
            send: (data, port, address, onError) => {
              const now = this.options.scheduler.now();
              const key = `${address}:${port}`;
              let q = queues.get(key);
              if (q === undefined) {
                q = { held: [], last: -Infinity, armed: false };
                queues.set(key, q);
              }
              const jitter = this.options.jitter > 0 ? Math.floor(this.jitterRandom() * (Math.floor(this.options.jitter) + 1)) : 0;
              const target = Math.max(q.last, now + jitter);
              q.last = target;
              const h: Held = { target, data: q.held.length === 0 && target <= now ? data : new Uint8Array(data), port, address, onError };
              if (q.held.length === 0 && target <= now) {
                handOff(h, now);
                return;
              }
              sentAt.set(h, now);
              q.held.push(h);
              arm(key, q);
            },
          };
        }),
      );
  }

  private queue(key: string): Pending[] {
    let q = this.pending.get(key);
    if (q === undefined) {
      q = [];
      this.pending.set(key, q);
    }
    return q;
  }
}

/** `drop` of every `block` → the spec; e.g. 5 % each way = 5 / 100, 10.557 % ≈ 53 / 500. */
export function lossSpec(drop: number, block: number): LossSpec {
  return { drop, block };
}

/** Human label, e.g. '5/100'. */
export function lossLabel(loss: LossSpec): string {
  return `${loss.drop}/${loss.block}`;
}
