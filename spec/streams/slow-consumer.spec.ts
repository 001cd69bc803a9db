/**
 * Demand-driven receive: a consumer slower than the network takes messages at its own pace
 * through `receive()`, the window follows it, and nothing is lost. Virtual network, virtual time.
 */
import { VirtualAction, VirtualTimeScheduler, mergeMap, range, tap, timer, type Subscription } from 'rxjs';
import type { Connection } from '../../lib/index';
import { VirtualNetwork, connect, listen } from '../../lib/testing/index';
import { DEFAULTS } from '../../lib/core/options';

const COUNT = 2000;
const SIZE = 10 * 1024;
const CONSUME_MS = 10;
const RECEIVE_WINDOW = DEFAULTS.receiveWindow;
// The window counts places of the version-1 payload (larger packets take several).
const PACKETS_PER_MESSAGE = Math.ceil(SIZE / (1200 - 18));

test(`a consumer spending ${CONSUME_MS} ms per message takes ${COUNT} × 10 KiB: nothing lost, at most a window plus one message held`, () => {
  const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
  const network = new VirtualNetwork({ scheduler, default: { delay: 2 } });
  const subscriptions: Subscription[] = [];
  const consumed: number[] = [];
  let acked = 0;
  let started = 0;
  let mostHeld = 0;
  subscriptions.push(
    listen(network, { host: '10.0.0.2', port: 5000 })
      .pipe(
        mergeMap((c: Connection) =>
          c.receive((m) => {
            started++;
            return timer(CONSUME_MS, scheduler).pipe(tap({ complete: () => void consumed.push(Buffer.from(m).readUInt32BE(0)) }));
          }),
        ),
      )
      .subscribe(),
  );
  subscriptions.push(
    connect(network, { from: '10.0.0.1', host: '10.0.0.2', port: 5000 })
      .pipe(
        mergeMap((c) =>
          range(0, COUNT).pipe(
            mergeMap((i) => {
              const m = Buffer.alloc(SIZE);
              m.writeUInt32BE(i, 0);
              return c.send(m).pipe(
                tap({
                  complete: () => {
                    acked++;
                    // Acknowledged by the receiver but not yet taken by the consumer: held in its memory.
                    mostHeld = Math.max(mostHeld, acked - started);
                  },
                }),
              );
            }, 256),
          ),
        ),
      )
      .subscribe({ error: (e: unknown) => fail(e) }),
  );
  scheduler.maxFrames = COUNT * CONSUME_MS * 2;
  scheduler.flush();
  expect(consumed).toEqual(Array.from({ length: COUNT }, (_, i) => i));
  // The bound: the receive window's packets in whole messages, plus the message in the handler.
  const bound = Math.ceil(RECEIVE_WINDOW / PACKETS_PER_MESSAGE) + 1;
  expect(mostHeld).toBeLessThanOrEqual(bound);
  expect(mostHeld).toBeGreaterThan(bound / 2); // the window was used, not starved
  // The consumer set the pace: the transfer took as long as consuming it.
  expect(scheduler.now()).toBeGreaterThanOrEqual(COUNT * CONSUME_MS);
  subscriptions.reverse().forEach((s) => s.unsubscribe());
});
