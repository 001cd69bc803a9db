/**
 * Priorities of channels (docs/streams.md, Channels): strict levels, packet-by-packet turns
 * within a level. Which packet leaves next, in marbles.
 */
import { TestScheduler } from 'rxjs/testing';
import { ack, harness } from '../harness';

const quiet = { pingInterval: 1_000_000, deliveryTimeout: 200 };
const channels = new Map([[0x0002, { offer: Uint8Array.of(0, 255), answer: Uint8Array.of(0, 255) }]]);
const PACKET = 1177; // a CHANNEL_DATA payload at the default datagram size

describe('channel priorities', () => {
  let ts: TestScheduler;
  beforeEach(() => (ts = new TestScheduler((a, b) => expect(a).toEqual(b))));

  it('a higher priority goes first as soon as the window opens, ahead of a bulk message already under way', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      // One packet in flight at a time: each ack lets exactly one more out.
      const { connection, outgoing$ } = harness(ts, quiet, hot('10ms a 9ms b 9ms c 9ms d', { a: ack(1, [], 1), b: ack(2, [], 1), c: ack(3, [], 1), d: ack(4, [], 1) }), {
        extensions: channels,
        peerReceiveWindow: 1,
      });
      const bulk = connection.channel(3, { priority: -1 });
      const control = connection.channel(2, { priority: 1 });
      cold('a 4ms b').subscribe((v) => (v === 'a' ? bulk.send$.next(Buffer.alloc(3 * PACKET, 1)) : control.send$.next(Buffer.from('stop'))));
      expectObservable(outgoing$, '^ 100ms !').toBe('a 9ms b 9ms c 9ms d', { a: 'D0@3', b: 'D1@2', c: 'D2@3', d: 'D3@3' });
    });
  });

  it('channels of one priority take turns packet by packet; channel 0 is priority 0', () => {
    ts.run(({ cold, hot, expectObservable }) => {
      // The window holds one packet until the ack at 10 ms opens it wide: what was queued meanwhile leaves in turn.
      const { connection, outgoing$ } = harness(ts, quiet, hot('10ms a', { a: ack(1, [], 100) }), { extensions: channels, peerReceiveWindow: 1 });
      const four = connection.channel(4);
      const five = connection.channel(5);
      const low = connection.channel(6, { priority: -5 });
      cold('a').subscribe(() => {
        connection.send$.next(Buffer.from('first'));
        low.send$.next(Buffer.from('last'));
        four.send$.next(Buffer.alloc(2 * PACKET, 4));
        five.send$.next(Buffer.alloc(2 * PACKET, 5));
        connection.send$.next(Buffer.from('zero'));
      });
      expectObservable(outgoing$, '^ 20ms !').toBe('a 9ms (bcdefg)', { a: 'D0', b: 'D1@4', c: 'D2@5', d: 'D3', e: 'D4@4', f: 'D5@5', g: 'D6@6' });
    });
  });
});
