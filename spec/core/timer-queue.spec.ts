/**
 * The endpoint-wide timer: every Deadline on one scheduler shares ONE scheduled action (for the
 * earliest), in virtual time as in real time, and leaves none behind once disposed.
 */
import { Subscription, type SchedulerAction, type SchedulerLike } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import { ConnectionCore } from '../../lib/core/connection';
import { Deadline } from '../../lib/core/deadline';
import { resolveProtocolOptions } from '../../lib/core/options';
import { TimerQueue } from '../../lib/core/timer-queue';
import { encode } from '../../lib/wire/codec';

function testScheduler(): TestScheduler {
  return new TestScheduler((a, b) => expect(a).toEqual(b));
}

test('1,000 deadlines are one scheduled action, and they fire in time order (ties in the order they were set)', () => {
  const ts = testScheduler();
  const fired: string[] = [];
  const deadlines = Array.from({ length: 1000 }, (_, i) => new Deadline(ts, (now) => fired.push(`${i}@${now}`)));
  // Set in an order unlike their times: 999, 998 … at 1 + (i % 10) ms.
  for (let i = 999; i >= 0; i--) deadlines[i]!.set(1 + (i % 10));
  expect(ts.actions.length).toBe(1);
  ts.flush();
  const expected: string[] = [];
  for (let t = 1; t <= 10; t++) for (let i = 999; i >= 0; i--) if (1 + (i % 10) === t) expected.push(`${i}@${t}`);
  expect(fired).toEqual(expected);
  expect(ts.actions.length).toBe(0);
});

test('moving a deadline later costs no action; earlier reschedules the one action; clear() and dispose() cancel', () => {
  const ts = testScheduler();
  const fired: string[] = [];
  const a = new Deadline(ts, (now) => fired.push(`a@${now}`));
  const b = new Deadline(ts, (now) => fired.push(`b@${now}`));
  const c = new Deadline(ts, (now) => fired.push(`c@${now}`));
  a.set(10);
  b.set(20);
  c.set(30);
  a.set(25); // later: still queued for 10, re-queued at 25 when it comes up
  b.set(5); // earlier: the action moves to 5
  expect(ts.actions.length).toBe(1);
  expect(ts.actions[0]!.delay).toBe(5);
  c.clear();
  ts.flush();
  expect(fired).toEqual(['b@5', 'a@25']);
  expect(TimerQueue.for(ts).size).toBe(0);
  expect(ts.actions.length).toBe(0);

  a.set(40);
  b.set(50);
  a.dispose();
  b.dispose();
  expect(TimerQueue.for(ts).size).toBe(0);
  expect(ts.actions.length).toBe(0); // no action left behind
  ts.flush();
  expect(fired).toEqual(['b@5', 'a@25']);
});

test('a deadline set for now from inside a callback runs on the next action, not in a loop within this one', () => {
  const ts = testScheduler();
  const runs: number[] = [];
  const d = new Deadline(ts, (now) => {
    runs.push(now);
    if (runs.length < 3) d.set(now);
  });
  d.set(7);
  ts.flush();
  expect(runs).toEqual([7, 7, 7]);
  expect(ts.actions.length).toBe(0);
});

test('a callback that throws does not strand the deadlines due with it, nor the queue', () => {
  const ts = testScheduler();
  const fired: number[] = [];
  const bad = new Deadline(ts, () => {
    throw new Error('boom');
  });
  const good = new Deadline(ts, (now) => fired.push(now));
  bad.set(3);
  good.set(3);
  good.set(3);
  new Deadline(ts, (now) => fired.push(now)).set(8);
  expect(() => ts.flush()).toThrow('boom');
  expect(fired).toEqual([3]);
  // The virtual-time flush that threw dropped every action, the queue's too: the next deadline set re-arms it.
  good.set(9);
  ts.flush();
  expect(fired).toEqual([3, 8, 9]);
  expect(ts.actions.length).toBe(0);
});

/**
 * A real-time scheduler whose actions run when the test says, as late as it says: a process that
 * was busy runs its due timers late, and what it reads after them comes in between.
 */
class BusyProcessScheduler implements SchedulerLike {
  private time = 0;
  private readonly actions: { at: number; run: () => void; subscription: Subscription }[] = [];

  now(): number {
    return this.time;
  }

  schedule<T>(work: (this: SchedulerAction<T>, state?: T) => void, delay = 0, state?: T): Subscription {
    const subscription = new Subscription();
    const action = { at: this.time + delay, run: () => work.call(subscription as unknown as SchedulerAction<T>, state), subscription };
    this.actions.push(action);
    subscription.add(() => {
      const i = this.actions.indexOf(action);
      if (i >= 0) this.actions.splice(i, 1);
    });
    return subscription;
  }

  get pending(): number {
    return this.actions.length;
  }

  /** Runs the earliest action at `time` (or at its own time, if that is later). */
  runNext(time: number): void {
    const action = this.actions.reduce((a, b) => (b.at < a.at ? b : a));
    this.time = Math.max(time, action.at);
    action.subscription.unsubscribe();
    action.run();
  }
}

test('an afterInput deadline that comes due late waits one turn, so what arrived meanwhile can make it moot; on time it fires at once', () => {
  const scheduler = new BusyProcessScheduler();
  const fired: string[] = [];
  const resend = new Deadline(scheduler, (now) => fired.push(`resend@${now}`), { afterInput: true });
  const plain = new Deadline(scheduler, (now) => fired.push(`plain@${now}`));
  resend.set(10);
  plain.set(10);
  scheduler.runNext(30); // 20 ms late: the process was busy
  expect(fired).toEqual(['plain@30']);
  expect(scheduler.pending).toBe(1); // the turn it waits for, with no delay
  resend.clear(); // the ack that was waiting is read
  scheduler.runNext(30);
  expect(fired).toEqual(['plain@30']);
  expect(scheduler.pending).toBe(0);

  // Late, and nothing came in between: it fires on that next turn.
  resend.set(40);
  scheduler.runNext(50);
  scheduler.runNext(50);
  expect(fired).toEqual(['plain@30', 'resend@50']);
  // A millisecond or two late, as timers are: at once.
  resend.set(60);
  scheduler.runNext(62);
  expect(fired).toEqual(['plain@30', 'resend@50', 'resend@62']);
  expect(scheduler.pending).toBe(0);
});

test('100 open connections keep one scheduled action between them, and none once they closed', () => {
  const ts = testScheduler();
  const options = resolveProtocolOptions({});
  const connections = Array.from(
    { length: 100 },
    (_, i) =>
      new ConnectionCore({
        id: i + 1,
        remote: { address: '10.0.0.2', port: 4000 + i },
        options,
        scheduler: ts,
        peerMaxDatagramSize: 1200,
        peerReceiveWindow: 1024,
        transmit: (packet) => encode(packet).length,
      }),
  );
  for (const c of connections) {
    c.send$.next(new Uint8Array(100)); // a retransmission deadline beside the heartbeat
    c.greet(undefined); // and an acknowledgement
  }
  expect(ts.actions.length).toBe(1);
  for (const c of connections) c.close();
  expect(TimerQueue.for(ts).size).toBe(0);
  expect(ts.actions.length).toBe(0);
});
