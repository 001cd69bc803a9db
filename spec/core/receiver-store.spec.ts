/**
 * The receiver's out-of-order store starts small and grows as far out as packets come: whatever
 * the order in which a window's packets arrive (each possibly twice), every message is delivered
 * once, whole, in order, and a copy is always recognised as a duplicate.
 */
import fc from 'fast-check';
import { DataOutcome, Receiver } from '../../lib/core/receiver';
import { PacketType, type DataPacket } from '../../lib/wire/packet';

const packet = (seq: number): DataPacket => ({ type: PacketType.Data, connectionId: 1, seq, batch: seq, index: 0, count: 1, payload: Buffer.from([seq & 0xff, seq >> 8]) });

describe('receiver store', () => {
  it('delivers every message once and in order, whatever the arrival order within the window', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }).chain((n) => fc.tuple(fc.shuffledSubarray([...Array(n).keys()], { minLength: n, maxLength: n }), fc.array(fc.nat(n - 1), { maxLength: 50 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }))),
        ([order, copies, start]) => {
          const delivered: number[] = [];
          const receiver = new Receiver({ receiveWindow: 1024, maxMessageSize: 10, payloadSize: 2 }, (m) => void delivered.push(m[0]! | (m[1]! << 8)), start, start);
          const seq = (i: number): number => (start + i) >>> 0;
          const arrivals = [...order];
          // Copies of packets already received, spread through the arrivals.
          copies.forEach((c, k) => arrivals.splice(Math.min(arrivals.length, order.indexOf(c) + 1 + k), 0, -1 - c));
          const seen = new Set<number>();
          for (const a of arrivals) {
            const i = a >= 0 ? a : -1 - a;
            const p = { ...packet(i), seq: seq(i), batch: seq(i) };
            const outcome = receiver.onData(p, 0);
            expect(outcome).toBe(seen.has(i) ? DataOutcome.Duplicate : DataOutcome.New);
            seen.add(i);
          }
          expect(delivered).toEqual(order.map((_, i) => i & 0xffff));
          expect(receiver.hasGaps).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  });
});
