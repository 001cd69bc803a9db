import type { SchedulerLike, Subscription } from 'rxjs';

/** What a TimerQueue holds: its place and time are the queue's to manage. */
export interface TimerEntry {
  /** When the queue runs it (scheduler clock, ms); Infinity while not queued. */
  at: number;
  /** Arming order: entries due at the same time run in the order they were armed. */
  order: number;
  /** Index in the heap, -1 while not queued. */
  slot: number;
  /** Called once `at` has come; the entry is out of the queue by then (it may queue itself again). */
  run(now: number): void;
}

const queues = new WeakMap<SchedulerLike, TimerQueue>();

/**
 * Every timer of one scheduler in one min-heap, with ONE scheduled action: for the earliest. A
 * connection has several deadlines (retransmit, ack delay, heartbeat, repeat requests); with one
 * scheduler action each, 10,000 connections kept tens of thousands of rxjs actions and Node timers
 * and created a few per message. Built on the injected scheduler only, so it runs the same in
 * real time and in virtual time (TestScheduler); when the heap empties, no action is left.
 */
export class TimerQueue {
  /** The queue shared by everything on `scheduler` (one per listener or process scheduler, one per test scheduler). */
  static for(scheduler: SchedulerLike): TimerQueue {
    let queue = queues.get(scheduler);
    if (queue === undefined) queues.set(scheduler, (queue = new TimerQueue(scheduler)));
    return queue;
  }

  private readonly heap: TimerEntry[] = [];
  private action: Subscription | undefined;
  /** The time the action was scheduled for; Infinity without one. */
  private actionFor = Infinity;
  private nextOrder = 0;
  /** Set while the due entries run: entries armed meanwhile wait for the next action, as a new action of their own would. */
  private running = false;
  private readonly work = (): void => this.runDue();

  private constructor(private readonly scheduler: SchedulerLike) {}

  /** Entries queued (for tests and stats). */
  get size(): number {
    return this.heap.length;
  }

  /** Queues `entry` for `time`, or moves it there if queued. */
  add(entry: TimerEntry, time: number): void {
    entry.order = this.nextOrder++;
    if (entry.slot < 0) {
      entry.at = time;
      entry.slot = this.heap.length;
      this.heap.push(entry);
      this.up(entry.slot);
    } else {
      const earlier = time < entry.at;
      entry.at = time;
      if (earlier) this.up(entry.slot);
      else this.down(entry.slot);
    }
    // A closed action: the scheduler dropped it (a virtual-time flush that threw unsubscribes every action).
    if (!this.running && (time < this.actionFor || this.action === undefined || this.action.closed)) this.arm();
  }

  remove(entry: TimerEntry): void {
    const slot = entry.slot;
    if (slot < 0) return;
    entry.slot = -1;
    entry.at = Infinity;
    const last = this.heap.pop()!;
    if (slot < this.heap.length) {
      this.heap[slot] = last;
      last.slot = slot;
      this.up(slot);
      this.down(last.slot);
    }
    if (this.heap.length === 0 && !this.running) this.disarm();
  }

  private runDue(): void {
    this.action = undefined;
    this.actionFor = Infinity;
    const now = this.scheduler.now();
    const first = this.nextOrder;
    this.running = true;
    // One entry's exception must not strand the others due now: they run, then the first one is thrown.
    let failure: { error: unknown } | undefined;
    const heap = this.heap;
    // Only what was armed before this run: an entry that re-arms itself for now runs on the next action.
    while (heap.length > 0 && heap[0]!.at <= now && heap[0]!.order < first) {
      const entry = heap[0]!;
      this.remove(entry);
      try {
        entry.run(now);
      } catch (error) {
        failure ??= { error };
      }
    }
    this.running = false;
    if (heap.length > 0) this.arm();
    if (failure !== undefined) throw failure.error;
  }

  private arm(): void {
    const top = this.heap[0];
    if (top === undefined) return this.disarm();
    const action = this.action;
    this.action = undefined;
    action?.unsubscribe();
    this.actionFor = top.at;
    this.action = this.scheduler.schedule(this.work, Math.max(0, Math.ceil(top.at - this.scheduler.now())));
  }

  private disarm(): void {
    this.actionFor = Infinity;
    const action = this.action;
    this.action = undefined;
    action?.unsubscribe();
  }

  private before(a: TimerEntry, b: TimerEntry): boolean {
    return a.at < b.at || (a.at === b.at && a.order < b.order);
  }

  private up(slot: number): void {
    const heap = this.heap;
    const entry = heap[slot]!;
    while (slot > 0) {
      const parentSlot = (slot - 1) >> 1;
      const parent = heap[parentSlot]!;
      if (!this.before(entry, parent)) break;
      heap[slot] = parent;
      parent.slot = slot;
      slot = parentSlot;
    }
    heap[slot] = entry;
    entry.slot = slot;
  }

  private down(slot: number): void {
    const heap = this.heap;
    const length = heap.length;
    const entry = heap[slot]!;
    for (;;) {
      const left = 2 * slot + 1;
      if (left >= length) break;
      const right = left + 1;
      const child = right < length && this.before(heap[right]!, heap[left]!) ? right : left;
      const smallest = heap[child]!;
      if (!this.before(smallest, entry)) break;
      heap[slot] = smallest;
      smallest.slot = slot;
      slot = child;
    }
    heap[slot] = entry;
    entry.slot = slot;
  }
}
