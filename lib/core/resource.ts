import { Observable, type Subscription } from 'rxjs';

/**
 * `switchMap` for a resource that is itself an Observable (a socket that closes on unsubscribe):
 * the user of the resource is always torn down BEFORE the resource, so connections can still send
 * their CLOSE on a socket that is about to close.
 */
export function useResource<R, T>(resource$: Observable<R>, use: (resource: R) => Observable<T>): Observable<T> {
  return new Observable<T>((subscriber) => {
    let inner: Subscription | undefined;
    const outer = resource$.subscribe({
      next: (resource) => {
        inner?.unsubscribe();
        // An observer of its own, not `subscriber`: subscribing `subscriber` itself would return it,
        // and unsubscribing that inside our teardown is a no-op.
        inner = use(resource).subscribe({
          next: (value) => subscriber.next(value),
          error: (error: unknown) => subscriber.error(error),
          complete: () => subscriber.complete(),
        });
      },
      error: (error: unknown) => subscriber.error(error),
    });
    return () => {
      inner?.unsubscribe();
      outer.unsubscribe();
    };
  });
}
