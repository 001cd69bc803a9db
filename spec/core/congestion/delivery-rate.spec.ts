import { DeliveryRate, type RateStamp } from '../../../lib/core/congestion/delivery-rate';

const stamp = (size = 1000): RateStamp => ({ deliveredBefore: 0, deliveredBeforeAt: 0, intervalStart: 0, inStepBefore: 0, appLimited: false, lastSentAt: 0, transmissions: 1, size });

/** Sends `packets` at the given times, then acknowledges them (in one ack) at `ackAt`. */
function exchange(rate: DeliveryRate, sendTimes: number[], ackAt: number, inFlightBefore = 0) {
  const packets = sendTimes.map((t, i) => {
    const p = stamp();
    rate.onSend(p, inFlightBefore + i * p.size, t);
    p.lastSentAt = t;
    return p;
  });
  rate.begin();
  for (const p of packets) rate.onDelivered(p, ackAt);
  return { ...rate.finish(0, ackAt - sendTimes[sendTimes.length - 1]!) };
}

describe('DeliveryRate', () => {
  test('a window acknowledged one RTT later: bytes over the ack interval', () => {
    const sample = exchange(new DeliveryRate(), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 20);
    expect(sample.ackedBytes).toBe(10_000);
    expect(sample.interval).toBe(20);
    expect(sample.deliveryRate).toBe(500);
  });

  test('acks compressed into one instant do not inflate the rate: the send interval bounds it', () => {
    const rate = new DeliveryRate();
    exchange(rate, [0], 20); // the first round sets the delivery clock
    // 10 packets sent over 40 ms, all acknowledged together 1 ms after the last left: the acks
    // span 41 ms since the last ack, the sending 60 ms since the packet that opened it (sent at 0).
    const sample = exchange(rate, [20, 24, 28, 32, 36, 40, 44, 48, 52, 60], 61, 1000);
    expect(sample.interval).toBe(60);
    expect(sample.deliveryRate).toBe(10_000 / 60);
  });

  test('packets sent while the application had nothing more are app-limited until those bytes are delivered', () => {
    const rate = new DeliveryRate();
    rate.markAppLimited(0);
    const limited = exchange(rate, [0, 1], 20);
    expect(limited.appLimited).toBe(true);
    const next = exchange(rate, [20, 20], 40);
    expect(next.appLimited).toBe(false);
  });

  test('packets reported late (released by a later ack than packets sent after them) do not inflate the rate', () => {
    // The path delivers 1000 bytes per ms: one packet leaves each ms. The first ack names
    // packets 0-9 and 60-99 but not 10-59 (an ack names a bounded number of ranges); the next
    // releases those 50 late with the one packet sent since.
    const rate = new DeliveryRate();
    const packets = Array.from({ length: 101 }, () => stamp());
    const send = (i: number, at: number) => {
      rate.onSend(packets[i]!, 0, at);
      packets[i]!.lastSentAt = at;
    };
    for (let i = 0; i < 100; i++) send(i, i);
    const ack = (indices: number[], at: number, rtt: number) => {
      rate.begin();
      for (const i of indices) rate.onDelivered(packets[i]!, at);
      return { ...rate.finish(0, rtt) };
    };
    const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);
    ack([...range(0, 10), ...range(60, 100)], 110, 11);
    send(100, 111);
    const late = ack([...range(10, 60), 100], 121, 10);
    expect(late.ackedBytes).toBe(51_000);
    expect(late.deliveryRate).toBeDefined();
    expect(late.deliveryRate!).toBeLessThanOrEqual(1000);
  });

  test('packets reordered by a few ms (jitter of up to an eighth of the RTT) still count: the rate is the path\'s', () => {
    // 1000 bytes per ms, one packet each ms, 40 ms round trip; each packet arrives 0-5 ms late at
    // random, and the receiver acknowledges what arrived, in arrival order.
    const rate = new DeliveryRate();
    let seed = 11;
    const jitter = (): number => ((seed = (seed * 48271) % 2147483647) % 500) / 100;
    const packets = Array.from({ length: 400 }, (_, i) => ({ p: stamp(), sentAt: i, ackAt: i + 40 + jitter() }));
    const events = [...packets.map((x) => ({ at: x.sentAt, kind: 'send' as const, x })), ...packets.map((x) => ({ at: x.ackAt, kind: 'ack' as const, x }))];
    events.sort((a, b) => a.at - b.at || (a.kind === 'ack' ? -1 : 1));
    let inFlight = 0;
    const rates: number[] = [];
    for (const e of events) {
      if (e.kind === 'send') {
        rate.onSend(e.x.p, inFlight, e.at);
        e.x.p.lastSentAt = e.at;
        inFlight += 1000;
        continue;
      }
      inFlight -= 1000;
      rate.begin();
      rate.onDelivered(e.x.p, e.at);
      const sample = rate.finish(inFlight, e.at - e.x.sentAt);
      if (e.x.sentAt > 100 && sample.deliveryRate !== undefined && sample.interval >= 40) rates.push(sample.deliveryRate);
    }
    rates.sort((a, b) => a - b);
    const median = rates[Math.floor(rates.length / 2)]!;
    expect(median).toBeGreaterThan(900);
    expect(rates[rates.length - 1]!).toBeLessThanOrEqual(1000 * 1.15);
  });

  test('a resend acknowledged at once (its original arrived late) does not make the packets sent before it look reported late', () => {
    // 1000 bytes per ms, one packet each ms, 40 ms round trip. Packet 50 is held up on the path;
    // the sender resends it at 85, and 3 ms later the ack for its original arrives.
    const rate = new DeliveryRate();
    const packets = Array.from({ length: 200 }, () => stamp());
    const events: { at: number; i: number; kind: 'send' | 'resend' | 'ack' }[] = [];
    for (let i = 0; i < 200; i++) {
      events.push({ at: i, i, kind: 'send' });
      if (i !== 50) events.push({ at: i + 40, i, kind: 'ack' });
    }
    events.push({ at: 85, i: 50, kind: 'resend' }, { at: 88, i: 50, kind: 'ack' });
    events.sort((a, b) => a.at - b.at || (a.kind === 'ack' ? -1 : 1));
    let inFlight = 0;
    const rates: number[] = [];
    for (const e of events) {
      const p = packets[e.i]!;
      if (e.kind !== 'ack') {
        rate.onSend(p, inFlight, e.at);
        p.lastSentAt = e.at;
        if (e.kind === 'resend') p.transmissions = 2;
        else inFlight += 1000;
        continue;
      }
      inFlight -= 1000;
      rate.begin();
      rate.onDelivered(p, e.at);
      const sample = rate.finish(inFlight, e.at - p.lastSentAt);
      if (e.at > 90 && e.at < 125 && sample.deliveryRate !== undefined) rates.push(sample.deliveryRate);
    }
    rates.sort((a, b) => a - b);
    expect(rates[Math.floor(rates.length / 2)]!).toBeGreaterThan(900);
  });

  test('an ack that releases nothing carries no rate', () => {
    const rate = new DeliveryRate();
    rate.begin();
    const sample = rate.finish(0, undefined);
    expect(sample.ackedBytes).toBe(0);
    expect(sample.deliveryRate).toBeUndefined();
  });
});
