import { TestScheduler } from 'rxjs/testing';
import { map } from 'rxjs';
import { requestRepeats } from '../../lib/core/pipelines/request-repeats';
import { Arrival } from '../../lib/core/pipelines/reassemble';
import { Receiver } from '../../lib/core/receiver';
import { RttEstimator } from '../../lib/core/rtt';
import type { DataPacket } from '../../lib/wire/packet';
import { data as anyData } from '../harness';

const data = (...args: Parameters<typeof anyData>): DataPacket => anyData(...args) as DataPacket;

describe('requestRepeats (gaps → REPEAT)', () => {
  let ts: TestScheduler;
  beforeEach(() => (ts = new TestScheduler((a, b) => expect(a).toEqual(b))));

  /** Feeds the receiver `seqs` at the marble's frames, and tells the pipeline of each arrival. */
  function run(marbles: string, seqs: Record<string, number>, expected: string, rttMs?: number) {
    ts.run(({ hot, expectObservable }) => {
      const receiver = new Receiver({ receiveWindow: 64, maxMessageSize: 1000, payloadSize: 100 }, () => undefined);
      const rtt = new RttEstimator(200);
      if (rttMs !== undefined) rtt.sample(rttMs);
      const arrivals$ = hot(marbles, seqs).pipe(
        map((seq) => {
          receiver.onData(data(seq), ts.now());
          return Arrival.Urgent;
        }),
      );
      const repeats$ = arrivals$.pipe(
        requestRepeats({ connectionId: 1, receiver, rtt, repeatDelay: 5, deliveryTimeout: 200, scheduler: ts }),
        map((r) => r.ranges.map((x) => `${x.start}-${x.end}`).join(',')),
      );
      expectObservable(repeats$, '^ 300ms !').toBe(expected, { a: '1-1', b: '1-2' });
    });
  }

  it('asks once 3 packets beyond a gap have arrived', () => run('a b c d', { a: 0, b: 2, c: 3, d: 4 }, '---a', 1000));
  it('asks after repeatDelay when fewer packets follow the gap', () => run('a b', { a: 0, b: 3 }, '6ms b', 1000));
  it('asks again only after a round trip (SRTT + RTTVAR, at least 10 ms)', () =>
    // SRTT 20, RTTVAR 10: first at 1 + repeatDelay 5, then every 30 ms.
    run('a b', { a: 0, b: 2 }, '6ms a 29ms a 29ms a 29ms a 29ms a 29ms a 29ms a 29ms a 29ms a 29ms a', 20));
});
