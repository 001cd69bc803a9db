import { TestScheduler } from 'rxjs/testing';
import { map } from 'rxjs';
import { ACK_NOW, acknowledge, type AckTrigger } from '../../lib/core/pipelines/acknowledge';
import { Arrival } from '../../lib/core/pipelines/reassemble';
import { Receiver } from '../../lib/core/receiver';
import { PacketType } from '../../lib/wire/packet';

const receiver = () => new Receiver({ receiveWindow: 16, maxMessageSize: 1000, payloadSize: 100 }, () => undefined);

describe('acknowledge (arrivals → DATA_ACKs)', () => {
  let ts: TestScheduler;
  beforeEach(() => (ts = new TestScheduler((a, b) => expect(a).toEqual(b))));
  const run = (arrivals: string, expected: string, maxPending = 3, r = receiver()) =>
    ts.run(({ hot, expectObservable }) => {
      const values: Record<string, AckTrigger> = { i: Arrival.InOrder, u: Arrival.Urgent, d: Arrival.Duplicate, w: Arrival.OutsideWindow, n: ACK_NOW };
      const acks$ = hot<AckTrigger>(arrivals, values).pipe(
        acknowledge({ connectionId: 1, receiver: r, maxDelay: 5, maxPending, scheduler: ts }),
        map(() => 'A'),
      );
      expectObservable(acks$).toBe(expected);
    });

  it('coalesces in-order packets: one ack within maxDelay of the first', () => run('i i', '5ms A'));
  it('acks at once after maxPending in-order packets', () => run('(iii)', 'A'));
  it('counts larger packets (path-MTU probing) by the window places they take: 150-byte payloads at 100 per place ack every 2', () => {
    const r = receiver();
    r.onData({ type: PacketType.Data, connectionId: 1, seq: 0, batch: 0, index: 0, count: 1, payload: Buffer.alloc(150) }, 0);
    run('(ii) 9ms i', 'A 17ms A', 3, r); // the third waits maxDelay: 1.5 places of 3
  });
  it('acks out-of-order packets, packets beyond the window, and ACK_NOW at once', () => run('u 9ms w 9ms n', 'A 9ms A 9ms A'));
  it('acks a duplicate at once when our last ack was a while ago (it was probably lost)', () => run('i 9ms d', '5ms A 4ms A'));
  it('acks a duplicate right behind the ack that covered it too, within the coalescing delay (PROTOCOL.md §5)', () => run('(ud)', 'A 4ms A'));
});
