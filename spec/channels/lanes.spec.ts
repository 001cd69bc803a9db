/**
 * ChannelLanes, the per-channel receive state (pure): what it delivers when, what it holds, and
 * that a peer's bad or endless input is bounded or refused.
 */
import fc from 'fast-check';
import { ChannelLanes, LaneOutcome, type LanePacket } from '../../lib/core/channels/lanes';
import { ChannelPacketType, FLAG_UNORDERED } from '../../lib/wire/channels';

const WINDOW = 64;
const P = 1182;

function lanes() {
  const delivered: string[] = [];
  const memory = { held: 0, claim: (b: number) => ((memory.held += b), true), release: (b: number) => void (memory.held -= b) };
  const l = new ChannelLanes({ maxChannel: 255, receiveWindow: WINDOW, maxMessageSize: 1 << 20, payloadSize: P }, memory, (channel, m) => delivered.push(`${channel}:${Buffer.from(m).toString()}`));
  const put = (p: LanePacket, now = 0): LaneOutcome => {
    const outcome = l.accept(p, now, false);
    l.flush();
    return outcome;
  };
  return { l, delivered, memory, put };
}

let seq = 0;
const data = (channel: number, batch: number, text: string, o: { index?: number; count?: number; unordered?: boolean; ttl?: number } = {}): LanePacket => ({
  type: ChannelPacketType.ChannelData,
  connectionId: 1,
  seq: seq++,
  batch,
  index: o.index ?? 0,
  count: o.count ?? 1,
  channel,
  flags: o.unordered === true ? FLAG_UNORDERED : 0,
  ttl: o.ttl ?? 0,
  payload: Buffer.from(text),
});
const abandon = (channel: number, batch: number, index = 0, count = 1): LanePacket => ({ type: ChannelPacketType.Abandon, connectionId: 1, seq: seq++, batch, index, count, channel });

describe('ChannelLanes', () => {
  it('delivers each channel in its own batch order, whatever the arrival order across channels', () => {
    const { delivered, put } = lanes();
    put(data(1, 1, 'b'));
    put(data(2, 0, 'x'));
    put(data(1, 0, 'a', { index: 0, count: 2 }));
    expect(delivered).toEqual(['2:x']);
    put(data(1, 0, 'a', { index: 1, count: 2 }));
    expect(delivered).toEqual(['2:x', '1:aa', '1:b']);
  });

  it('unordered messages go as soon as whole, and the delivery point still passes them', () => {
    const { l, delivered, put } = lanes();
    put(data(3, 2, 'c', { unordered: true }));
    put(data(3, 1, 'b', { unordered: true }));
    expect(delivered).toEqual(['3:c', '3:b']);
    expect(l.heldBatches).toBe(2);
    put(data(3, 0, 'a', { unordered: true }));
    expect(delivered).toEqual(['3:c', '3:b', '3:a']);
    expect(l.heldBatches).toBe(0);
  });

  it('ABANDON drops what was held of the batch, gives its memory back, and lets the next one through', () => {
    const { delivered, memory, put } = lanes();
    put(data(1, 0, 'half', { index: 0, count: 3 }));
    put(data(1, 1, 'next'));
    expect(memory.held).toBe(3 * (P - 5) + 4);
    put(abandon(1, 0, 2, 3));
    expect(delivered).toEqual(['1:next']);
    expect(memory.held).toBe(4); // 'next', until the application consumes it
    put(data(1, 0, 'late copy', { index: 1, count: 3 }));
    expect(delivered).toEqual(['1:next']);
  });

  it('drops a message whose deadline passed while it waited, and gives its bytes back', () => {
    const { delivered, memory, put } = lanes();
    put(data(1, 1, 'due at 20', { ttl: 20 }), 0);
    put(abandon(1, 0), 21);
    expect(delivered).toEqual([]);
    expect(memory.held).toBe(0);
  });

  it('refuses what no honest sender sends: a batch beyond the window, a channel beyond the negotiated one, contradicting packets', () => {
    const cases: [string, (put: ReturnType<typeof lanes>['put']) => LaneOutcome, RegExp][] = [
      ['far ahead', (put) => put(data(1, WINDOW + 1, 'x')), /beyond the delivery point/],
      ['channel 256', (put) => put(data(256, 0, 'x')), /beyond the highest channel negotiated \(255\)/],
      ['count changes', (put) => (put(data(1, 0, 'x', { count: 2 })), put(data(1, 0, 'y', { index: 1, count: 3 }))), /contradicts/],
      ['index twice', (put) => (put(data(1, 0, 'x', { count: 2 })), put(data(1, 0, 'y', { count: 2 }))), /contradicts/],
      ['abandon count', (put) => (put(data(1, 0, 'x', { count: 2 })), put(abandon(1, 0, 1, 5))), /ABANDON says 5 packets/],
    ];
    for (const [, run, why] of cases) {
      const { l, put } = lanes();
      expect(run(put)).toBe(LaneOutcome.Violation);
      expect(l.violation?.closeReason).toBe(2);
      expect(l.violation?.message).toMatch(why);
    }
    const { l, put } = lanes();
    expect(put(data(1, 0, 'x', { count: 2000 }))).toBe(LaneOutcome.Violation);
    expect(l.violation?.closeReason).toBe(3);
  });

  it('memory stays bounded while a peer keeps abandoning: at most a window of batches held, and every claim given back', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ parts: fc.integer({ min: 1, max: 4 }), received: fc.integer({ min: 0, max: 4 }), skip: fc.boolean(), late: fc.integer({ min: 0, max: 8 }) }), { minLength: 200, maxLength: 2000 }), (plan) => {
        const { l, delivered, memory, put } = lanes();
        // A sender within the window: the abandon (or last packet) of batch b may come up to `late` batches later.
        const pending: { at: number; p: LanePacket }[] = [];
        let maxHeld = 0;
        let consumed = 0;
        plan.forEach((m, b) => {
          const got = Math.min(m.received, m.parts);
          for (let i = 0; i < got; i++) put(data(1, b, 'x', { index: i, count: m.parts }));
          const rest = m.skip || got < m.parts ? abandon(1, b, got === m.parts ? 0 : got, m.parts) : undefined;
          if (rest !== undefined) pending.push({ at: b + Math.min(m.late, WINDOW - 2), p: rest });
          for (const due of pending.filter((x) => x.at <= b)) put(due.p);
          pending.splice(0, pending.length, ...pending.filter((x) => x.at > b));
          maxHeld = Math.max(maxHeld, l.heldBatches);
        });
        for (const x of pending) put(x.p);
        expect(l.violation).toBeUndefined();
        expect(maxHeld).toBeLessThanOrEqual(WINDOW);
        expect(l.heldBatches).toBe(0);
        consumed = delivered.length; // each delivered message holds its bytes until consumed
        expect(memory.held).toBe(delivered.reduce((n, d) => n + d.length - 2, 0));
        expect(consumed).toBeLessThanOrEqual(plan.length);
      }),
      { numRuns: 50 },
    );
  });
});
