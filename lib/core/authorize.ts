import { from, type ObservableInput, type Subscription } from 'rxjs';

/** What `authorize` is told of a connection attempt. */
export interface ConnectAttempt {
  readonly address: string;
  readonly port: number;
  /** The starter offered encryption, and its handshake authenticated. */
  readonly secure: boolean;
}

export type Authorize = (attempt: ConnectAttempt) => boolean | ObservableInput<boolean>;

/**
 * Asks `authorize` about `attempt` and calls `decide` once with the answer: at once for a boolean,
 * later for a Promise or Observable (its first value; an error, no value, or a throw refuse).
 * Returns the subscription of a pending answer (unsubscribe to stop waiting), or undefined once decided.
 */
export function askAuthorize(authorize: Authorize, attempt: ConnectAttempt, decide: (allowed: boolean) => void): Subscription | undefined {
  let verdict: boolean | ObservableInput<boolean>;
  try {
    verdict = authorize(attempt);
  } catch {
    decide(false);
    return undefined;
  }
  if (typeof verdict === 'boolean') {
    decide(verdict);
    return undefined;
  }
  let settled = false;
  const settle = (allowed: boolean): void => {
    if (settled) return;
    settled = true;
    pending?.unsubscribe();
    decide(allowed);
  };
  let pending: Subscription | undefined;
  pending = from(verdict).subscribe({ next: (allowed) => settle(allowed === true), error: () => settle(false), complete: () => settle(false) });
  if (settled) {
    pending.unsubscribe();
    return undefined;
  }
  return pending;
}
