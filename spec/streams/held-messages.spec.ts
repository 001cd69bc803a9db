/**
 * No acknowledged message is ever dropped by the library: messages that arrive before the
 * application subscribes are held (and keep the receive window closed), and the ordinary
 * compositions that subscribe late get every message. Virtual network, virtual time.
 */
import { VirtualAction, VirtualTimeScheduler, concatMap, delay, mergeMap, range, switchMap, take, tap, timer, type Observable, type Subscription } from 'rxjs';
import type { Connection } from '../../lib/index';
import { VirtualNetwork, connect, listen } from '../../lib/testing/index';

const MESSAGES = 100;

function world() {
  const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
  const network = new VirtualNetwork({ scheduler, default: { delay: 5 } });
  const subscriptions: Subscription[] = [];
  const run = (ms: number) => {
    scheduler.schedule(() => undefined, ms);
    scheduler.maxFrames = scheduler.now() + ms;
    scheduler.flush();
  };
  /** A starter from `from` that sends `count` messages "from-i", `after` ms after it is open. */
  const sender = (from: string, count = MESSAGES, after = 0) => {
    const acked: number[] = [];
    subscriptions.push(
      connect(network, { from, host: '10.0.0.2', port: 5000 })
        .pipe(mergeMap((c) => timer(after, scheduler).pipe(mergeMap(() => range(0, count))).pipe(mergeMap((i) => c.send(Buffer.from(`${from}-${i}`)).pipe(tap({ complete: () => acked.push(i) }))))))
        .subscribe({ error: () => undefined }),
    );
    return acked;
  };
  return { scheduler, network, run, sender, keep: (s: Subscription) => subscriptions.push(s), close: () => subscriptions.reverse().forEach((s) => s.unsubscribe()) };
}

const text = (m: Uint8Array) => Buffer.from(m).toString();

describe('messages that arrive before anyone subscribes are held, not dropped', () => {
  function expectAll(received: string[], from: string) {
    expect(received).toEqual(Array.from({ length: MESSAGES }, (_, i) => `${from}-${i}`));
  }

  it('listen().pipe(delay(50)): every message reaches the late subscriber', () => {
    const w = world();
    const received: string[] = [];
    w.keep(
      listen(w.network, { host: '10.0.0.2', port: 5000 })
        .pipe(
          delay(50, w.scheduler),
          mergeMap((c) => c.messages$),
        )
        .subscribe((m) => received.push(text(m))),
    );
    w.sender('10.0.0.1');
    w.run(5000);
    expectAll(received, '10.0.0.1');
    w.close();
  });

  it('a timer before switchMap(() => c.messages$): every message', () => {
    const w = world();
    const received: string[] = [];
    w.keep(
      listen(w.network, { host: '10.0.0.2', port: 5000 })
        .pipe(mergeMap((c) => timer(20, w.scheduler).pipe(switchMap(() => c.messages$))))
        .subscribe((m) => received.push(text(m))),
    );
    w.sender('10.0.0.1');
    w.run(5000);
    expectAll(received, '10.0.0.1');
    w.close();
  });

  it('listen().pipe(concatMap(c => c.messages$)): the second connection gets every message once the first ends', () => {
    const w = world();
    const received: string[] = [];
    w.keep(
      listen(w.network, { host: '10.0.0.2', port: 5000 })
        .pipe(concatMap((c: Connection) => c.messages$.pipe(take(MESSAGES))))
        .subscribe((m) => received.push(text(m))),
    );
    w.sender('10.0.0.1', MESSAGES, 500); // the first connection is slow to speak: the second's messages all arrive meanwhile
    w.run(1);
    w.sender('10.0.0.3');
    w.run(10_000);
    expect(received.filter((m) => m.startsWith('10.0.0.1-'))).toHaveLength(MESSAGES);
    expect(received.filter((m) => m.startsWith('10.0.0.3-'))).toEqual(Array.from({ length: MESSAGES }, (_, i) => `10.0.0.3-${i}`));
    w.close();
  });

  it('held messages keep the receive window closed: the peer waits, and resumes once the application subscribes', () => {
    const w = world();
    let connection: Connection | undefined;
    w.keep(listen(w.network, { host: '10.0.0.2', port: 5000, receiveWindow: 16 }).subscribe((c) => (connection = c)));
    const acked = w.sender('10.0.0.1', 50);
    w.run(3000);
    // Nobody reads: at most a window's worth (16 one-packet messages) was accepted and acknowledged.
    expect(acked.length).toBeGreaterThan(0);
    expect(acked.length).toBeLessThanOrEqual(16);
    const received: string[] = [];
    w.keep(connection!.messages$.subscribe((m) => received.push(text(m))));
    w.run(3000);
    expect(received).toEqual(Array.from({ length: 50 }, (_, i) => `10.0.0.1-${i}`));
    expect(acked).toHaveLength(50);
    w.close();
  });

  it('a subscriber after the close still gets the held messages, then the completion', () => {
    const w = world();
    let connection: Connection | undefined;
    w.keep(listen(w.network, { host: '10.0.0.2', port: 5000 }).subscribe((c) => (connection = c)));
    w.keep(
      connect(w.network, { from: '10.0.0.1', host: '10.0.0.2', port: 5000 }).subscribe((c) => {
        c.send$.next(Buffer.from('one'));
        c.send$.next(Buffer.from('two'));
        c.send$.complete(); // deliver, then close normally
      }),
    );
    w.run(2000);
    const events: string[] = [];
    (connection!.messages$ as Observable<Uint8Array>).subscribe({ next: (m) => events.push(text(m)), complete: () => events.push('complete') });
    expect(events).toEqual(['one', 'two', 'complete']);
    w.close();
  });
});
