import { TestScheduler } from 'rxjs/testing';
import { map, timer } from 'rxjs';
import { Inbox } from '../../lib/core/inbox';

const msg = (text: string) => Buffer.from(text);
const text = (m: Uint8Array) => Buffer.from(m).toString();

describe('Inbox (whole messages between reassembly and the application)', () => {
  let ts: TestScheduler;
  beforeEach(() => (ts = new TestScheduler((a, b) => expect(a).toEqual(b))));

  it('holds messages until the first subscriber, counting their packets, and releases them when taken', () => {
    const released: number[] = [];
    const inbox = new Inbox((packets) => released.push(packets));
    inbox.push(msg('a'), 2);
    inbox.push(msg('b'), 3);
    expect(inbox.heldPackets).toBe(5);
    const got: string[] = [];
    inbox.messages$.subscribe((m) => got.push(text(m)));
    expect(got).toEqual(['a', 'b']);
    expect(inbox.heldPackets).toBe(0);
    expect(released).toEqual([2, 3]);
  });

  it('multicasts live messages; what was held goes to the first subscriber only', () => {
    const inbox = new Inbox(() => undefined);
    inbox.push(msg('held'), 1);
    const first: string[] = [];
    const second: string[] = [];
    inbox.messages$.subscribe((m) => first.push(text(m)));
    inbox.messages$.subscribe((m) => second.push(text(m)));
    inbox.push(msg('live'), 1);
    expect(first).toEqual(['held', 'live']);
    expect(second).toEqual(['live']);
    expect(inbox.heldPackets).toBe(0);
  });

  it('a subscriber added while a message is being handed out gets the next one, and nothing is released twice', () => {
    const released: number[] = [];
    const inbox = new Inbox((p) => released.push(p));
    const late: string[] = [];
    let added = false;
    inbox.messages$.subscribe(() => {
      if (added) return;
      added = true;
      inbox.messages$.subscribe((m) => late.push(text(m)));
    });
    inbox.push(msg('first'), 2);
    inbox.push(msg('second'), 3);
    expect(late).toEqual(['second']);
    expect(released).toEqual([2, 3]);
    expect(inbox.heldPackets).toBe(0);
  });

  it('holds again when the last subscriber leaves', () => {
    const inbox = new Inbox(() => undefined);
    const sub = inbox.messages$.subscribe();
    sub.unsubscribe();
    inbox.push(msg('x'), 4);
    expect(inbox.heldPackets).toBe(4);
  });

  it('after the end, a late subscriber gets what was held, then the end (complete, or the error)', () => {
    const normal = new Inbox(() => undefined);
    normal.push(msg('a'), 1);
    normal.end(undefined);
    const events: string[] = [];
    normal.messages$.subscribe({ next: (m) => events.push(text(m)), complete: () => events.push('|') });
    expect(events).toEqual(['a', '|']);
    const failed = new Inbox(() => undefined);
    failed.push(msg('b'), 1);
    const boom = new Error('boom');
    failed.end(boom);
    const seen: unknown[] = [];
    failed.messages$.subscribe({ next: (m) => seen.push(text(m)), error: (e: unknown) => seen.push(e) });
    expect(seen).toEqual(['b', boom]);
  });

  it('receive(): one handler at a time; a message stays held until its handler completes; completes after the last', () => {
    ts.run(({ expectObservable }) => {
      const held: number[] = [];
      const inbox = new Inbox(() => undefined);
      for (const t of ['a', 'b', 'c']) inbox.push(msg(t), 1);
      const out$ = inbox.receive((m) => timer(10, ts).pipe(map(() => text(m))), 1);
      ts.schedule(() => held.push(inbox.heldPackets), 5);
      ts.schedule(() => held.push(inbox.heldPackets), 15);
      ts.schedule(() => held.push(inbox.heldPackets), 25);
      ts.schedule(() => inbox.end(undefined), 26);
      expectObservable(out$).toBe('10ms a 9ms b 9ms (c|)', { a: 'a', b: 'b', c: 'c' });
      ts.schedule(() => expect(held).toEqual([3, 2, 1]), 40);
    });
  });

  it('receive() with concurrency 2 runs two handlers at once', () => {
    ts.run(({ expectObservable }) => {
      const inbox = new Inbox(() => undefined);
      for (const t of ['a', 'b', 'c']) inbox.push(msg(t), 1);
      const out$ = inbox.receive((m) => timer(10, ts).pipe(map(() => text(m))), 2);
      expectObservable(out$, '^ 30ms !').toBe('10ms (ab) 6ms c', { a: 'a', b: 'b', c: 'c' });
    });
  });

  it('unsubscribing a receive() releases what its handlers held', () => {
    const released: number[] = [];
    const inbox = new Inbox((p) => released.push(p));
    inbox.push(msg('a'), 3);
    const sub = inbox.receive(() => timer(1000)).subscribe();
    expect(inbox.heldPackets).toBe(3);
    sub.unsubscribe();
    expect(inbox.heldPackets).toBe(0);
    expect(released).toEqual([3]);
  });
});
