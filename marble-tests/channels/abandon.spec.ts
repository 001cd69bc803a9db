/**
 * The abandon/skip exchange of docs/protocol.md §13.2 in marbles: a sender whose message's ttl
 * runs out resends its packets as ABANDON (and one more for packets never sent), a receiver that
 * gets ABANDON skips the batch and delivers what waited behind it.
 */
import { TestScheduler } from 'rxjs/testing';
import { map } from 'rxjs';
import { MessageExpiredError } from '../../lib/index';
import { ChannelPacketType } from '../../lib/wire/channels';
import type { Packet } from '../../lib/wire/packet';
import { ID, ack, harness } from '../harness';

const quiet = { pingInterval: 1_000_000, deliveryTimeout: 200 };
const channels = new Map([[0x0002, { offer: Uint8Array.of(0, 255), answer: Uint8Array.of(0, 255) }]]);

const channelData = (seq: number, batch: number, index: number, count: number, text: string, ttl = 0): Packet => ({
  type: ChannelPacketType.ChannelData,
  connectionId: ID,
  seq,
  batch,
  index,
  count,
  channel: 1,
  flags: 0,
  ttl,
  payload: Buffer.from(text),
});
const abandon = (seq: number, batch: number, index: number, count: number): Packet => ({ type: ChannelPacketType.Abandon, connectionId: ID, seq, batch, index, count, channel: 1 });

describe('abandon and skip (channels)', () => {
  let ts: TestScheduler;
  beforeEach(() => (ts = new TestScheduler((a, b) => expect(a).toEqual(b))));

  it('a message not acknowledged within its ttl goes out again as ABANDON at once, then on the RTO until acknowledged; send() errors with MessageExpiredError', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, quiet, hot('300ms a', { a: ack(1) }), { extensions: channels });
      const outcome = cold('a');
      let failure: unknown;
      let failedAt = -1;
      outcome.subscribe(() =>
        connection.channel(1).send(Buffer.from('x'), { ttl: 50 }).subscribe({ error: (e) => ((failure = e), (failedAt = ts.now())) }),
      );
      expectObservable(outgoing$, '^ 1000ms !').toBe('a 49ms b 199ms b', { a: 'D0@1', b: 'K0@1' });
      ts.flush();
      expect(failure).toBeInstanceOf(MessageExpiredError);
      expect((failure as Error).message).toMatch(/1-byte message on channel 1 was not acknowledged within its ttl of 50 ms/);
      expect(failedAt).toBe(50);
      expect(connection.stats.messagesExpired).toBe(1);
    });
  });

  it('packets never sent of an abandoned message cost one ABANDON with a new seq, before the channel moves on', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      // The peer's window holds two packets: the third of the message waits for the ack at 60 ms.
      const { connection, outgoing$ } = harness(ts, quiet, hot('60ms a 9ms b', { a: ack(2), b: ack(4) }), { extensions: channels, peerReceiveWindow: 2 });
      cold('a 69ms b').subscribe((v) => {
        const m = v === 'a' ? Buffer.alloc(3000, 1) : Buffer.from('next');
        connection.channel(1).send(m, { ttl: 50 }).subscribe({ error: () => undefined });
      });
      expectObservable(outgoing$, '^ 150ms !').toBe('(ab) 46ms (cd) 6ms e 9ms f', { a: 'D0@1', b: 'D1@1', c: 'K0@1', d: 'K1@1', e: 'K2@1', f: 'D3@1' });
    });
  });

  it('unsubscribing from send() on a ttl channel before the acknowledgement abandons the message', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, quiet, hot('100ms a', { a: ack(1) }), { extensions: channels });
      const channel = connection.channel(2, { ttl: 10_000 });
      cold('a').subscribe(() => {
        const sending = channel.send(Buffer.from('x')).subscribe();
        ts.schedule(() => sending.unsubscribe(), 20);
      });
      expectObservable(outgoing$, '^ 500ms !').toBe('a 19ms b', { a: 'D0@2', b: 'K0@2' });
    });
  });

  it('the receiver skips an abandoned batch and delivers, at once, what waited behind it; the abandoned message never comes', () => {
    ts.run(({ hot, expectObservable }) => {
      const incoming$ = hot('a 9ms b 9ms c 9ms d', {
        a: channelData(0, 0, 0, 2, 'A1'), // the first half of A
        b: channelData(2, 1, 0, 1, 'B'), // B, whole, waits behind A
        c: abandon(1, 0, 1, 2), // A's second half was given up on
        d: channelData(3, 2, 0, 1, 'C'),
      });
      const { connection } = harness(ts, quiet, incoming$, { extensions: channels });
      expectObservable(connection.channel(1).messages$.pipe(map((m) => Buffer.from(m).toString())), '^ 500ms !').toBe('20ms b 9ms c', { b: 'B', c: 'C' });
    });
  });

  it('a message whose receiver deadline passed while it waited behind an earlier one is dropped, not delivered late', () => {
    ts.run(({ hot, expectObservable }) => {
      const incoming$ = hot('a 9ms b 39ms c', {
        a: channelData(1, 1, 0, 1, 'late', 20), // ttl 20: due by 20 ms, but batch 0 is missing
        b: channelData(2, 2, 0, 1, 'reliable'),
        c: abandon(0, 0, 0, 1), // batch 0 skipped at 50 ms: 'late' is past its deadline
      });
      const { connection } = harness(ts, quiet, incoming$, { extensions: channels });
      expectObservable(connection.channel(1).messages$.pipe(map((m) => Buffer.from(m).toString())), '^ 500ms !').toBe('50ms b', { b: 'reliable' });
    });
  });
});
