import { Pacer } from '../../../lib/core/congestion/pacer';
import { WindowedMax } from '../../../lib/core/congestion/windowed-max';

describe('Pacer', () => {
  test('a full bucket of burst, then one packet per size / rate ms', () => {
    const pacer = new Pacer(3000, 2);
    const rate = 100; // bytes per ms: the bucket is max(3000, 200) bytes
    let sent = 0;
    while (pacer.maySend(1000, rate, 0)) {
      pacer.spend(1000, rate, 0);
      sent++;
    }
    expect(sent).toBe(3);
    expect(pacer.readyAt(1000, rate, 0)).toBe(10);
    expect(pacer.maySend(1000, rate, 9.9)).toBe(false);
    expect(pacer.maySend(1000, rate, 10)).toBe(true);
  });

  test('an idle sender does not save up more than the bucket', () => {
    const pacer = new Pacer(2000, 2);
    pacer.spend(2000, 100, 0);
    expect(pacer.maySend(2000, 100, 1_000_000)).toBe(true);
    pacer.spend(2000, 100, 1_000_000);
    expect(pacer.maySend(1000, 100, 1_000_000)).toBe(false);
  });

  test('a sender woken late (a busy event loop) still sends at the rate: what accrued past the wake it asked for is kept, up to another bucket', () => {
    const rate = 40_000; // 40 MB/s: the bucket holds 2 ms, 80 kB
    const size = 1200;
    const sendFor = (late: number): number => {
      const pacer = new Pacer(12_000, 2);
      let now = 0;
      let sent = 0;
      while (now < 1000) {
        while (pacer.maySend(size, rate, now)) {
          pacer.spend(size, rate, now);
          sent += size;
        }
        now = pacer.readyAt(size, rate, now) + late;
      }
      return sent / now;
    };
    expect(sendFor(0)).toBeGreaterThan(0.99 * rate);
    expect(sendFor(1.5)).toBeGreaterThan(0.99 * rate); // each wake 1.5 ms late: 2.5 ms between sends
    expect(sendFor(3)).toBeGreaterThan(0.97 * rate);
    expect(sendFor(10)).toBeLessThan(0.45 * rate); // a stall is not saved up for ever
  });

  test('resends take their share: spending past zero delays new packets', () => {
    const pacer = new Pacer(1000, 2);
    pacer.spend(3000, 100, 0); // three resends on a full 1000-byte bucket
    expect(pacer.readyAt(1000, 100, 0)).toBe(30);
  });

  test('a refill that falls short by a rounding error lets the packet go: a wait of no time would re-arm for ever', () => {
    const rate = 13 / 97; // at 1655 ms, 1000 / rate ms later refills 999.9999999999999 bytes
    const pacer = new Pacer(1000, 2);
    pacer.spend(1000, rate, 1655);
    const later = 1655 + 1000 / rate;
    expect(pacer.maySend(1000, rate, later)).toBe(true);
    expect(pacer.maySend(1000, rate, later - 10)).toBe(false);
    expect(pacer.readyAt(1000, rate, later - 10)).toBeGreaterThan(later - 10);
  });

  test('no rate: everything may leave', () => {
    const pacer = new Pacer(1000, 2);
    pacer.spend(1e9, Infinity, 0);
    expect(pacer.maySend(1e6, Infinity, 0)).toBe(true);
  });
});

describe('WindowedMax', () => {
  test('the largest value of the last N rounds; older maxima age out', () => {
    const max = new WindowedMax(3);
    max.update(5, 0);
    max.update(9, 1);
    max.update(4, 1);
    max.update(2, 2);
    expect(max.value).toBe(9);
    max.update(3, 3);
    expect(max.value).toBe(9);
    max.update(1, 4); // round 1 is now 3 rounds old
    expect(max.value).toBe(3);
  });
});
