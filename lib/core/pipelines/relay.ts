import { Subscriber, type Observable } from 'rxjs';

/**
 * Subscribes to `source` on behalf of an operator's `destination`: values go to `onNext`, errors
 * straight to the destination, completion to `onComplete` (default: the destination completes),
 * and unsubscribing the destination unsubscribes the source. It is what RxJS's own operators do
 * with their internal OperatorSubscriber: one object per subscription, where `subscribe({ … })`
 * would allocate three and a closure per callback — which adds up over 10,000 connections.
 */
export function relay<T>(source: Observable<T>, destination: Subscriber<unknown>, onNext: (value: T) => void, onComplete?: () => void): void {
  source.subscribe(new RelaySubscriber(destination, onNext, onComplete));
}

class RelaySubscriber<T> extends Subscriber<T> {
  constructor(
    private readonly target: Subscriber<unknown>,
    private readonly onNext: (value: T) => void,
    private readonly onComplete: (() => void) | undefined,
  ) {
    // A Subscriber destination adds this subscriber to itself: its teardown reaches the source.
    super(target as Subscriber<never>);
  }

  protected override _next(value: T): void {
    try {
      this.onNext(value);
    } catch (error) {
      this.target.error(error);
    }
  }

  protected override _complete(): void {
    if (this.onComplete === undefined) return super._complete();
    try {
      this.onComplete();
    } catch (error) {
      this.target.error(error);
    }
  }
}

/**
 * A subscriber at the end of a pipeline: the one-object equivalent of `subscribe({ next, error,
 * complete })`, which allocates a SafeSubscriber, a ConsumerObserver and its closures. The
 * callbacks may be shared by several sinks (a connection's wire is one `next` for five pipelines).
 */
export class Sink<T> extends Subscriber<T> {
  constructor(
    private readonly onNext: (value: T) => void,
    private readonly onError: (error: unknown) => void,
    private readonly onComplete?: () => void,
  ) {
    super();
  }

  protected override _next(value: T): void {
    this.onNext(value);
  }

  protected override _error(error: unknown): void {
    try {
      this.onError(error);
    } finally {
      this.unsubscribe();
    }
  }

  protected override _complete(): void {
    try {
      this.onComplete?.();
    } finally {
      this.unsubscribe();
    }
  }
}
