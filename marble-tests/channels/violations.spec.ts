/**
 * Bad channel input never corrupts a connection: on a connection without channels their packets
 * are dropped and counted; on one with channels, a packet no honest sender sends closes it with
 * ProtocolError (CLOSE reason 2).
 */
import { TestScheduler } from 'rxjs/testing';
import { ProtocolError } from '../../lib/index';
import { ChannelPacketType } from '../../lib/wire/channels';
import type { Packet } from '../../lib/wire/packet';
import { ID, harness } from '../harness';

const quiet = { pingInterval: 1_000_000, deliveryTimeout: 200 };
const channels = new Map([[0x0002, { offer: Uint8Array.of(0, 255), answer: Uint8Array.of(0, 255) }]]);
const channelData = (seq: number, channel: number, batch = 0): Packet => ({
  type: ChannelPacketType.ChannelData,
  connectionId: ID,
  seq,
  batch,
  index: 0,
  count: 1,
  channel,
  flags: 0,
  ttl: 0,
  payload: Buffer.from('x'),
});

describe('bad channel input', () => {
  let ts: TestScheduler;
  beforeEach(() => (ts = new TestScheduler((a, b) => expect(a).toEqual(b))));

  it('on a connection that did not negotiate channels: CHANNEL_DATA and ABANDON are dropped and counted, nothing answers them', () => {
    ts.run(({ hot, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, quiet, hot('a 9ms b', { a: channelData(0, 1), b: { type: ChannelPacketType.Abandon, connectionId: ID, seq: 1, batch: 0, index: 0, count: 1, channel: 1 } }));
      expectObservable(outgoing$, '^ 100ms !').toBe('');
      let stateAt50: string | undefined;
      ts.schedule(() => (stateAt50 = connection.state), 50);
      ts.flush();
      expect(connection.stats.droppedDatagrams).toBe(2);
      expect(stateAt50).toBe('open');
    });
  });

  it.each([
    ['a channel beyond the negotiated one', [channelData(0, 256)], /beyond the highest channel negotiated/],
    ['a batch further ahead than the window allows', [channelData(0, 1, 5000)], /beyond the delivery point/],
    ['two packets for one place in a batch', [{ ...channelData(0, 1), count: 2 } as Packet, { ...channelData(1, 1), count: 2 } as Packet], /contradicts/],
  ])('%s closes the connection with ProtocolError, reason 2', (_what, packets, why) => {
    ts.run(({ hot, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, quiet, hot('(ab)', { a: packets[0]!, b: packets[1] ?? packets[0]! }), { extensions: channels });
      let closed: unknown;
      connection.closed$.subscribe((info) => (closed = info));
      expectObservable(outgoing$, '^ 10ms !').toBe('(cc)', { c: 'C2' });
      ts.flush();
      expect((closed as { reason: number }).reason).toBe(2);
      expect((closed as { error: unknown }).error).toBeInstanceOf(ProtocolError);
      expect((closed as { error: Error }).error.message).toMatch(why);
    });
  });
});
