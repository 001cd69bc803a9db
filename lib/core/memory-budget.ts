/**
 * A listener-wide bound on message bytes held for its connections (`maxMemory`): received data
 * beyond what the application consumed (packets out of order, messages being reassembled, whole
 * messages not yet taken) and send buffers.
 *
 * A plain shared pool could deadlock: connections that each hold part of a message would fill it,
 * and none could finish its message to free anything. So a message's bytes are claimed whole
 * (count × payload size) when its first packet is accepted, and only a message starting at a
 * connection's in-order point may draw on the last `reserve` bytes (one message of the largest
 * size): some connection can always complete the message its application waits for.
 */
export class MemoryBudget {
  used = 0;
  /** Connections that dropped data for want of room: woken (once each) by the next release. */
  private waiters: Set<() => void> | undefined;

  constructor(
    readonly limit: number,
    /** Bytes only an in-order message start may take: at least the largest message's claim. */
    readonly reserve: number,
    /** Told the new total after each change (the listener's `memoryInUse` figure). */
    private readonly onChange?: (used: number) => void,
  ) {}

  /** Bytes any claim may still take. */
  get sharedFree(): number {
    return this.limit - this.reserve - this.used;
  }

  claim(bytes: number, inOrder: boolean): boolean {
    if (this.used + bytes > (inOrder ? this.limit : this.limit - this.reserve)) return false;
    this.used += bytes;
    this.onChange?.(this.used);
    return true;
  }

  release(bytes: number): void {
    this.used -= bytes;
    this.onChange?.(this.used);
    if (this.waiters === undefined || this.waiters.size === 0) return;
    const woken = [...this.waiters];
    this.waiters.clear();
    for (const wake of woken) wake();
  }

  /** `wake` runs once, at the next release: the caller turned data away and its peer waits to resend. */
  waitForRoom(wake: () => void): void {
    (this.waiters ??= new Set()).add(wake);
  }
}

/** No bound: a starter's connection (its application chose to connect, and its own limits apply). */
export const UNBOUNDED = (): MemoryBudget => new MemoryBudget(Infinity, 0);

/**
 * One connection's share of a budget: what it claimed, so that its close gives back exactly
 * that, and a release after the close (a held message consumed late) gives back nothing twice.
 */
export class MemoryAccount {
  private charged = 0;
  private closed = false;
  /** Set by the connection: asks the peer to resend what was turned away. */
  onRoom: (() => void) | undefined;
  private readonly wake = (): void => {
    if (!this.closed) this.onRoom?.();
  };

  constructor(readonly budget: MemoryBudget) {}

  /** Data was turned away for want of room: `onRoom` runs once some is released. */
  waitForRoom(): void {
    if (!this.closed) this.budget.waitForRoom(this.wake);
  }

  claim(bytes: number, inOrder: boolean): boolean {
    if (bytes <= 0) return true;
    if (this.closed || !this.budget.claim(bytes, inOrder)) return false;
    this.charged += bytes;
    return true;
  }

  release(bytes: number): void {
    if (this.closed || bytes <= 0) return;
    this.charged -= bytes;
    this.budget.release(bytes);
  }

  /** The connection ended: everything it held goes back. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.budget.release(this.charged);
    this.charged = 0;
  }
}
