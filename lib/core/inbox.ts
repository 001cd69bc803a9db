import { Observable, from, type ObservableInput, type Subscriber } from 'rxjs';

/** A whole message on its way to the application, and the receive-window packets it holds. */
interface Held {
  readonly message: Uint8Array;
  readonly packets: number;
  /** Consumers still working on it; its packets are released when the last one is done. */
  pending: number;
}

/** One consumer: a `messages$` subscriber (takes each message at once) or a `receive()` (at its own pace). */
interface Consumer {
  take(held: Held): void;
  end(error: unknown): void;
}

/** How an inbox ended: `undefined` error for a normal close. */
interface Ending {
  readonly error: unknown;
}

/**
 * Whole messages between reassembly and the application. Acknowledged messages are never dropped:
 * while nobody consumes, they wait here, and their packets keep the receive window closed (the
 * receiver's window is `receiveWindow - heldPackets`), so a late or slow consumer slows the peer
 * down instead of losing data or growing memory: at most a window of packets plus one message.
 *
 * `messages$` is multicast: each subscriber gets every message from its subscription on, and the
 * first subscriber also gets what was held before it. `receive(handler)` is a consumer that takes
 * a message only when one of its `concurrency` handlers is free, so the window follows its pace.
 * When the connection ends, consumers get what was held, then complete (normal close) or error.
 */
export class Inbox {
  private readonly waiting: Held[] = [];
  private waitingHead = 0;
  /** Replaced, never changed in place: a delivery loop keeps the list it started with, and no copy is made per message. */
  private consumers: readonly Consumer[] = [];
  private ending: Ending | undefined;
  /** Packets of messages delivered by the receiver and not yet consumed. */
  heldPackets = 0;

  /** `onReleased` runs when a message leaves the inbox (the receive window grows by its packets, the listener's memory by its bytes). */
  constructor(private readonly onReleased: (packets: number, bytes: number) => void) {}

  /** A whole message from the receiver, `packets` long. */
  push(message: Uint8Array, packets: number): void {
    const held: Held = { message, packets, pending: 0 };
    this.heldPackets += packets;
    if (this.consumers.length === 0) {
      this.waiting.push(held);
      return;
    }
    this.hand(held);
  }

  /** The connection ended; consumers finish what is held, then end. */
  end(error: unknown): void {
    if (this.ending !== undefined) return;
    this.ending = { error };
    for (const consumer of this.consumers) this.endIfDrained(consumer);
  }

  /** A getter, not a field: an Observable and a closure per connection add up over 10,000 idle ones. */
  get messages$(): Observable<Uint8Array> {
    return new Observable<Uint8Array>((subscriber) => {
      const consumer: Consumer = {
        take: (held) => {
          subscriber.next(held.message);
          this.done(held);
        },
        end: (error) => (error === undefined ? subscriber.complete() : subscriber.error(error)),
      };
      this.attach(consumer);
      return () => this.detach(consumer);
    });
  }

  /**
   * Runs `handler` for each message, at most `concurrency` at a time, and emits what the handlers
   * emit. A message's packets stay in the receive window until its handler completes, so the peer
   * sends no faster than the handlers finish.
   */
  receive<R>(handler: (message: Uint8Array) => ObservableInput<R>, concurrency = 1): Observable<R> {
    return new Observable<R>((subscriber: Subscriber<R>) => {
      const queue: Held[] = [];
      const active = new Set<Held>();
      let ending: Ending | undefined;
      const finishIfDone = (): void => {
        if (ending === undefined || active.size > 0 || queue.length > 0) return;
        if (ending.error === undefined) subscriber.complete();
        else subscriber.error(ending.error);
      };
      const start = (): void => {
        while (active.size < concurrency && queue.length > 0) {
          const held = queue.shift()!;
          active.add(held);
          let output: Observable<R>;
          try {
            output = from(handler(held.message));
          } catch (error) {
            subscriber.error(error);
            return;
          }
          subscriber.add(
            output.subscribe({
              next: (value) => subscriber.next(value),
              error: (error: unknown) => subscriber.error(error),
              complete: () => {
                active.delete(held);
                this.done(held);
                start();
                finishIfDone();
              },
            }),
          );
        }
      };
      const consumer: Consumer = {
        take: (held) => {
          queue.push(held);
          start();
        },
        end: (error) => {
          ending = { error };
          finishIfDone();
        },
      };
      this.attach(consumer);
      return () => {
        this.detach(consumer);
        for (const held of [...queue.splice(0), ...active]) this.done(held);
        active.clear();
      };
    });
  }

  private attach(consumer: Consumer): void {
    const first = this.consumers.length === 0;
    this.consumers = [...this.consumers, consumer];
    if (first) {
      // What waited for a consumer goes to the first one.
      while (this.waitingHead < this.waiting.length && this.consumers.includes(consumer)) {
        const held = this.waiting[this.waitingHead]!;
        this.waiting[this.waitingHead++] = undefined as unknown as Held;
        held.pending = 1;
        consumer.take(held);
      }
      if (this.waitingHead === this.waiting.length) {
        this.waiting.length = 0;
        this.waitingHead = 0;
      }
    }
    if (this.consumers.includes(consumer)) this.endIfDrained(consumer);
  }

  private hand(held: Held): void {
    const consumers = this.consumers;
    held.pending = consumers.length;
    for (const consumer of consumers) consumer.take(held);
  }

  private detach(consumer: Consumer): void {
    this.consumers = this.consumers.filter((c) => c !== consumer);
  }

  private done(held: Held): void {
    if (--held.pending > 0) return;
    this.heldPackets -= held.packets;
    this.onReleased(held.packets, held.message.length);
  }

  private endIfDrained(consumer: Consumer): void {
    if (this.ending === undefined || this.waitingHead < this.waiting.length) return;
    consumer.end(this.ending.error);
  }
}
