/**
 * Shared plumbing for the integration specs: real loopback sockets, every one of them closed
 * after each test, and every wait bounded so a hang fails with a message instead of a jest timeout.
 */
import { createCipheriv, createHash } from 'node:crypto';
import type { Subscription } from 'rxjs';
import { connect, listen, type Connection, type ConnectOptions, type ListenOptions } from '../../lib/index';
import { mulberry32 } from '../../lib/testing/random';

export const HOST = '127.0.0.1';

/** How an Observable ended. */
export type Ended = { readonly kind: 'complete' } | { readonly kind: 'error'; readonly error: unknown };

/** Rejects with `label` when `promise` does not settle within `ms`; never leaves a timer behind. */
export function within<T>(promise: Promise<T>, ms: number, label: string | (() => string)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${typeof label === 'string' ? label : label()}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Subscriptions and cleanups opened by a test; `useResources()` registers an afterEach that
 * releases them all (in reverse order), so a failing test still closes its sockets.
 */
export class Resources {
  private readonly cleanups: (() => void)[] = [];

  add(subscription: Subscription): Subscription {
    this.cleanups.push(() => subscription.unsubscribe());
    return subscription;
  }

  defer(cleanup: () => void): void {
    this.cleanups.push(cleanup);
  }

  releaseAll(): void {
    for (const cleanup of this.cleanups.splice(0).reverse()) cleanup();
  }
}

export function useResources(): Resources {
  const resources = new Resources();
  afterEach(() => resources.releaseAll());
  return resources;
}

export interface InboxOptions {
  /** Keep the messages (default true); false only counts them (and calls onMessage). */
  readonly keep?: boolean;
  readonly onMessage?: (message: Uint8Array, index: number) => void;
}

/**
 * The receiving end of a connection: subscribes to the hot `messages$` at once (call it
 * synchronously when the connection is emitted) and records what arrives and how it ended.
 */
export class Inbox {
  readonly messages: Uint8Array[] = [];
  count = 0;
  ended: Ended | undefined;
  /** Settles (never rejects) when messages$ completes or errors. */
  readonly end: Promise<Ended>;
  private readonly waiters: { count: number; resolve: () => void }[] = [];

  constructor(readonly conn: Connection, options: InboxOptions = {}) {
    let settle!: (ended: Ended) => void;
    this.end = new Promise<Ended>((resolve) => (settle = resolve));
    const finish = (ended: Ended): void => {
      this.ended = ended;
      settle(ended);
      // Wake waiters; they check for themselves whether their count was reached.
      for (const w of this.waiters.splice(0)) w.resolve();
    };
    conn.messages$.subscribe({
      next: (message) => {
        const index = this.count++;
        if (options.keep !== false) this.messages.push(message);
        options.onMessage?.(message, index);
        for (let i = this.waiters.length - 1; i >= 0; i--) {
          const w = this.waiters[i]!;
          if (this.count >= w.count) {
            this.waiters.splice(i, 1);
            w.resolve();
          }
        }
      },
      error: (error: unknown) => finish({ kind: 'error', error }),
      complete: () => finish({ kind: 'complete' }),
    });
  }

  /** Resolves once `count` messages arrived; rejects if messages$ ends first or after `ms`. */
  waitFor(count: number, ms: number, label = `${count} messages`): Promise<void> {
    const reached = new Promise<void>((resolve) => {
      if (this.count >= count || this.ended !== undefined) resolve();
      else this.waiters.push({ count, resolve });
    }).then(() => {
      if (this.count < count) {
        throw new Error(`messages$ ended (${describeEnd(this.ended)}) after ${this.count} of ${count} messages: ${label}`);
      }
    });
    return within(reached, ms, () => `${label} (got ${this.count})`);
  }
}

export function describeEnd(ended: Ended | undefined): string {
  if (ended === undefined) return 'not ended';
  if (ended.kind === 'complete') return 'completed';
  const e = ended.error as Error;
  return `error ${e?.name}: ${e?.message}`;
}

export interface Server {
  readonly port: number;
  readonly subscription: Subscription;
  /** Accepted connections, in order, each with its inbox already subscribed. */
  readonly accepted: Inbox[];
  /** Resolves with the n-th (1-based) accepted connection. */
  nth(n: number, ms?: number): Promise<Inbox>;
}

/**
 * Listens on 127.0.0.1, port 0. `onConnection` runs synchronously for each accepted connection,
 * after its inbox subscribed to messages$ (so it may send at once).
 */
export function startServer(
  resources: Resources,
  options: Omit<ListenOptions, 'host' | 'port' | 'onListening'> = {},
  onConnection?: (inbox: Inbox) => void,
  inboxOptions?: (conn: Connection) => InboxOptions,
): Promise<Server> {
  return new Promise<Server>((resolve, reject) => {
    const accepted: Inbox[] = [];
    const waiters: { n: number; resolve: (inbox: Inbox) => void }[] = [];
    let port = 0;
    const subscription = listen({ ...options, host: HOST, port: 0, onListening: (address) => (port = address.port) }).subscribe({
      next: (conn) => {
        const inbox = new Inbox(conn, inboxOptions?.(conn));
        accepted.push(inbox);
        onConnection?.(inbox);
        for (let i = waiters.length - 1; i >= 0; i--) {
          const w = waiters[i]!;
          if (accepted.length >= w.n) {
            waiters.splice(i, 1);
            w.resolve(accepted[w.n - 1]!);
          }
        }
      },
      error: reject,
    });
    resources.add(subscription);
    // onListening runs synchronously inside subscribe() for an IP literal host, but wait a turn
    // anyway in case binding is asynchronous.
    const ready = (): void => {
      if (port === 0) return void setImmediate(ready);
      resolve({
        port,
        subscription,
        accepted,
        nth: (n, ms = 5000) =>
          within(
            new Promise<Inbox>((res) => {
              if (accepted.length >= n) res(accepted[n - 1]!);
              else waiters.push({ n, resolve: res });
            }),
            ms,
            `listener accepting connection #${n}`,
          ),
      });
    };
    ready();
  });
}

export interface Client {
  readonly inbox: Inbox;
  readonly conn: Connection;
  readonly subscription: Subscription;
  /** Settles (never rejects) when the connect() Observable completes or errors. */
  readonly end: Promise<Ended>;
}

/**
 * Connects to 127.0.0.1:`port`; resolves once open, with the inbox subscribed synchronously on
 * emission. Rejects with connect()'s error when it fails before opening.
 */
export function connectClient(
  resources: Resources,
  port: number,
  options: Omit<ConnectOptions, 'host' | 'port'> = {},
  inboxOptions?: InboxOptions,
): Promise<Client> {
  let settleEnd!: (ended: Ended) => void;
  const end = new Promise<Ended>((resolve) => (settleEnd = resolve));
  return new Promise<Client>((resolve, reject) => {
    let opened = false;
    const holder: { subscription?: Subscription } = {};
    const subscription = connect({ ...options, host: HOST, port }).subscribe({
      next: (conn) => {
        opened = true;
        const inbox = new Inbox(conn, inboxOptions);
        // subscribe() may not have returned yet; the holder is filled right after.
        queueMicrotask(() => resolve({ inbox, conn, subscription: holder.subscription!, end }));
      },
      error: (error: unknown) => {
        settleEnd({ kind: 'error', error });
        if (!opened) reject(error);
      },
      complete: () => settleEnd({ kind: 'complete' }),
    });
    holder.subscription = subscription;
    resources.add(subscription);
  });
}

/** sha256 of a message, hex. */
export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A small seeded PRNG, floats in [0, 1): the testing kit's. */
export const seededRandom = mulberry32;

/** `size` deterministic pseudo-random bytes for (seed, index): an AES-128-CTR keystream (fast). */
export function seededBytes(seed: number, index: number, size: number): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32BE(seed >>> 0, 0);
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(index >>> 0, 0);
  return createCipheriv('aes-128-ctr', key, iv).update(Buffer.alloc(size));
}

/** How many of `list` are `name`, ignoring case (Node reports UDP sockets as 'UDPWrap'). */
export function countOf(list: readonly string[], name: string): number {
  return list.filter((r) => r.toLowerCase() === name.toLowerCase()).length;
}

/** Polls until `check` holds, up to `ms`; returns whether it held. */
export async function eventually(check: () => boolean, ms: number, step = 10): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (check()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(step);
  }
}
