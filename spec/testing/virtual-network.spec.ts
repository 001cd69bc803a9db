import fc from 'fast-check';
import { asyncScheduler, map, VirtualAction, VirtualTimeScheduler, type Subscription } from 'rxjs';
import { TestScheduler } from 'rxjs/testing';
import type { BindOptions, Datagram, DatagramSocket, SocketFactory } from '../../lib/core/transport';
import { VirtualNetwork, type LinkImpairment, type TrafficEvent, type VirtualNetworkError } from '../../lib/testing';
import { Random, deriveSeed, mulberry32 } from '../../lib/testing/random';

const A = '10.0.0.1';
const B = '10.0.0.2';

interface Bound {
  readonly socket: DatagramSocket;
  readonly subscription: Subscription;
  /** Every datagram received, with the scheduler time it arrived. */
  readonly received: Array<{ time: number; datagram: Datagram }>;
  readonly done: { completed: boolean; error: unknown };
}

function bind(factory: SocketFactory, scheduler: { now(): number }, options: Partial<BindOptions> = {}): Bound {
  let socket: DatagramSocket | undefined;
  const subscription = factory({ type: 'udp4', ...options }).subscribe({
    next: (s) => (socket = s),
    error: (e: unknown) => {
      throw e;
    },
  });
  if (!socket) throw new Error('socket not bound synchronously');
  const received: Bound['received'] = [];
  const done: Bound['done'] = { completed: false, error: undefined };
  socket.datagrams$.subscribe({
    next: (datagram) => received.push({ time: scheduler.now(), datagram }),
    complete: () => (done.completed = true),
    error: (e: unknown) => (done.error = e),
  });
  return { socket, subscription, received, done };
}

function bindError(factory: SocketFactory, options: Partial<BindOptions> = {}): VirtualNetworkError | undefined {
  let error: VirtualNetworkError | undefined;
  factory({ type: 'udp4', ...options }).subscribe({ error: (e: VirtualNetworkError) => (error = e) });
  return error;
}

function setup(options: { seed?: number; default?: LinkImpairment } = {}) {
  const scheduler = new VirtualTimeScheduler();
  const net = new VirtualNetwork({ scheduler, ...options });
  return { scheduler, net };
}

/** Sends `count` 4-byte datagrams carrying their index (big-endian). */
function sendNumbered(from: DatagramSocket, to: DatagramSocket, count: number): void {
  const buf = new Uint8Array(4);
  const view = new DataView(buf.buffer);
  for (let i = 0; i < count; i++) {
    view.setUint32(0, i); // the same buffer every time: the network must copy
    from.send(buf, to.address().port, to.address().address);
  }
}

function numberOf(d: Datagram): number {
  return new DataView(d.data.buffer, d.data.byteOffset, d.data.byteLength).getUint32(0);
}

describe('random', () => {
  it('mulberry32 is deterministic, in [0,1) and roughly uniform', () => {
    const a = mulberry32(42);
    const b = mulberry32(42);
    const c = mulberry32(43);
    const xs = Array.from({ length: 10_000 }, () => a());
    expect(Array.from({ length: 10_000 }, () => b())).toEqual(xs);
    expect(Array.from({ length: 10 }, () => c())).not.toEqual(xs.slice(0, 10));
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.01);
    const buckets = new Array<number>(10).fill(0);
    for (const x of xs) buckets[Math.floor(x * 10)]! += 1;
    for (const n of buckets) expect(Math.abs(n - 1000)).toBeLessThan(120);
  });

  it('Random.int covers its inclusive range; chance honours 0 and 1; forks differ', () => {
    const r = new Random(7);
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      const x = r.int(3, 6);
      expect(x).toBeGreaterThanOrEqual(3);
      expect(x).toBeLessThanOrEqual(6);
      seen.add(x);
    }
    expect([...seen].sort()).toEqual([3, 4, 5, 6]);
    expect(Array.from({ length: 100 }, () => r.chance(0)).some(Boolean)).toBe(false);
    expect(Array.from({ length: 100 }, () => r.chance(1)).every(Boolean)).toBe(true);
    expect(deriveSeed(1, 'a')).not.toBe(deriveSeed(1, 'b'));
    expect(deriveSeed(1, 'a')).not.toBe(deriveSeed(2, 'a'));
    expect(r.fork('x').next()).toBe(new Random(7).fork('x').next());
    expect(() => r.int(5, 4)).toThrow(RangeError);
  });
});

describe('VirtualNetwork', () => {
  it('delivers after the configured delay, with the sender address, and copies the bytes', () => {
    const { scheduler, net } = setup({ default: { delay: 25 } });
    const a = bind(net.socketFactory(A), scheduler, { port: 1000 });
    const b = bind(net.socketFactory(B), scheduler, { port: 2000 });
    const buf = Uint8Array.of(1, 2, 3);
    a.socket.send(buf, 2000, B);
    buf[0] = 99; // the sender reuses its buffer
    scheduler.schedule(() => a.socket.send(Uint8Array.of(4), 2000, B), 10);
    scheduler.flush();
    expect(b.received.map((r) => r.time)).toEqual([25, 35]);
    expect(b.received.map((r) => Array.from(r.datagram.data))).toEqual([[1, 2, 3], [4]]);
    expect(b.received[0]!.datagram.address).toBe(A);
    expect(b.received[0]!.datagram.port).toBe(1000);
    expect(a.received).toEqual([]);
    expect(net.stats().total).toEqual({ sent: 2, delivered: 2, dropped: 0, duplicated: 0, unreachable: 0, inFlight: 0 });
  });

  it('delivers asynchronously even with delay 0 (never inside send)', () => {
    const { scheduler, net } = setup();
    const a = bind(net.socketFactory(A), scheduler);
    const b = bind(net.socketFactory(B), scheduler);
    a.socket.send(Uint8Array.of(7), b.socket.address().port, B);
    expect(b.received).toHaveLength(0);
    expect(net.stats().total.inFlight).toBe(1);
    scheduler.flush();
    expect(b.received).toHaveLength(1);
    expect(b.received[0]!.time).toBe(0);
  });

  it('a rate limit serializes datagrams: each waits for those ahead of it, then its own transmission time', () => {
    const { scheduler, net } = setup({ default: { delay: 5, rate: 100_000 } }); // 100 bytes per ms
    const a = bind(net.socketFactory(A), scheduler, { port: 1000 });
    const b = bind(net.socketFactory(B), scheduler, { port: 2000 });
    for (let i = 0; i < 3; i++) a.socket.send(new Uint8Array(200), 2000, B);
    scheduler.schedule(() => a.socket.send(new Uint8Array(100), 2000, B), 20); // the queue has drained by then
    scheduler.flush();
    expect(b.received.map((r) => r.time)).toEqual([7, 9, 11, 26]);
  });

  it('a full bottleneck queue drops what does not fit (drop-tail), counted as dropped', () => {
    const { scheduler, net } = setup({ default: { rate: 100_000, queue: 500 } });
    const a = bind(net.socketFactory(A), scheduler, { port: 1000 });
    const b = bind(net.socketFactory(B), scheduler, { port: 2000 });
    for (let i = 0; i < 5; i++) a.socket.send(new Uint8Array(200), 2000, B); // 200 + 200 fit, 600 does not
    scheduler.schedule(() => a.socket.send(new Uint8Array(200), 2000, B), 3); // 100 bytes left: fits again
    scheduler.flush();
    expect(b.received.map((r) => r.time)).toEqual([2, 4, 6]);
    expect(net.stats().total).toMatchObject({ sent: 6, delivered: 3, dropped: 3 });
    expect(() => setup({ default: { rate: 0 } })).toThrow(RangeError);
  });

  it('keeps FIFO order on a link without jitter or reordering', () => {
    const { scheduler, net } = setup({ default: { delay: 5 } });
    const a = bind(net.socketFactory(A), scheduler);
    const b = bind(net.socketFactory(B), scheduler);
    sendNumbered(a.socket, b.socket, 100);
    scheduler.flush();
    expect(b.received.map((r) => numberOf(r.datagram))).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('works under TestScheduler.run with marbles', () => {
    const testScheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    testScheduler.run(({ cold, expectObservable }) => {
      const net = new VirtualNetwork({ scheduler: testScheduler, default: { delay: 10 } });
      let a: DatagramSocket | undefined;
      let b: DatagramSocket | undefined;
      net.socketFactory(A)({ type: 'udp4', port: 1 }).subscribe((s) => (a = s));
      net.socketFactory(B)({ type: 'udp4', port: 2 }).subscribe((s) => (b = s));
      cold('a-b 5ms c', { a: 'x', b: 'y', c: 'z' }).subscribe((ch) => a!.send(new TextEncoder().encode(ch), 2, B));
      expectObservable(b!.datagrams$.pipe(map((d) => new TextDecoder().decode(d.data)))).toBe('10ms x-y 5ms z', {
        x: 'x',
        y: 'y',
        z: 'z',
      });
    });
  });

  it('loses close to the configured fraction with a fixed seed', () => {
    const { scheduler, net } = setup({ seed: 1234, default: { loss: 0.3 } });
    const a = bind(net.socketFactory(A), scheduler);
    const b = bind(net.socketFactory(B), scheduler);
    sendNumbered(a.socket, b.socket, 10_000);
    scheduler.flush();
    const s = net.stats().total;
    expect(s.sent).toBe(10_000);
    expect(s.dropped / s.sent).toBeGreaterThan(0.27);
    expect(s.dropped / s.sent).toBeLessThan(0.33);
    expect(s.delivered).toBe(10_000 - s.dropped);
    expect(b.received).toHaveLength(s.delivered);
  });

  it('loss 0 drops nothing and loss 1 drops everything', () => {
    const { scheduler, net } = setup();
    const a = bind(net.socketFactory(A), scheduler);
    const b = bind(net.socketFactory(B), scheduler);
    net.setLink(A, B, { loss: 1 });
    net.setLink(B, A, { loss: 0 });
    sendNumbered(a.socket, b.socket, 500);
    sendNumbered(b.socket, a.socket, 500);
    scheduler.flush();
    expect(b.received).toHaveLength(0);
    expect(a.received).toHaveLength(500);
  });

  it('duplicates close to the configured fraction; copies are identical but separate buffers', () => {
    const { scheduler, net } = setup({ seed: 99, default: { duplicate: 0.2 } });
    const a = bind(net.socketFactory(A), scheduler);
    const b = bind(net.socketFactory(B), scheduler);
    sendNumbered(a.socket, b.socket, 10_000);
    scheduler.flush();
    const s = net.stats().total;
    expect(s.duplicated / s.sent).toBeGreaterThan(0.18);
    expect(s.duplicated / s.sent).toBeLessThan(0.22);
    expect(b.received).toHaveLength(10_000 + s.duplicated);
    expect(s.delivered).toBe(10_000 + s.duplicated);

    const { scheduler: s2, net: net2 } = setup({ default: { duplicate: 1, delay: 3 } });
    const c = bind(net2.socketFactory(A), s2);
    const d = bind(net2.socketFactory(B), s2);
    c.socket.send(Uint8Array.of(5, 6), d.socket.address().port, B);
    s2.flush();
    expect(d.received).toHaveLength(2);
    expect(Array.from(d.received[0]!.datagram.data)).toEqual([5, 6]);
    expect(Array.from(d.received[1]!.datagram.data)).toEqual([5, 6]);
    expect(d.received[0]!.datagram.data).not.toBe(d.received[1]!.datagram.data);
    expect(d.received.map((r) => r.time)).toEqual([3, 3]);
  });

  it('reordering makes later datagrams overtake held-back ones', () => {
    const { scheduler, net } = setup({ seed: 5, default: { delay: 10, reorder: 0.2 } });
    const a = bind(net.socketFactory(A), scheduler);
    const b = bind(net.socketFactory(B), scheduler);
    sendNumbered(a.socket, b.socket, 1000);
    scheduler.flush();
    const order = b.received.map((r) => numberOf(r.datagram));
    expect([...order].sort((x, y) => x - y)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(order).not.toEqual([...order].sort((x, y) => x - y));
    // held-back ones arrive after delay + reorderDelay (default delay + jitter + 1 = 11)
    const late = b.received.filter((r) => r.time === 21).length;
    expect(b.received.filter((r) => r.time === 10).length + late).toBe(1000);
    expect(late / 1000).toBeGreaterThan(0.15);
    expect(late / 1000).toBeLessThan(0.25);
  });

  it('honours an explicit reorderDelay', () => {
    const { scheduler, net } = setup({ default: { delay: 2, reorder: 1, reorderDelay: 40 } });
    const a = bind(net.socketFactory(A), scheduler);
    const b = bind(net.socketFactory(B), scheduler);
    a.socket.send(Uint8Array.of(1), b.socket.address().port, B);
    scheduler.flush();
    expect(b.received.map((r) => r.time)).toEqual([42]);
  });

  it('keeps jitter within delay..delay+jitter and uses the whole range', () => {
    const { scheduler, net } = setup({ seed: 3, default: { delay: 10, jitter: 5 } });
    const a = bind(net.socketFactory(A), scheduler);
    const b = bind(net.socketFactory(B), scheduler);
    sendNumbered(a.socket, b.socket, 1000);
    scheduler.flush();
    const times = b.received.map((r) => r.time);
    expect(times).toHaveLength(1000);
    expect(Math.min(...times)).toBe(10);
    expect(Math.max(...times)).toBe(15);
    expect(new Set(times).size).toBe(6);
    for (const t of times) expect(Number.isInteger(t)).toBe(true);
  });

  it('reports every datagram on traffic$ with its fate, index and arrival times', () => {
    const { scheduler, net } = setup({ default: { delay: 4 } });
    net.setLink(A, B, { delay: 4, drop: (_d, index) => index === 1 });
    const events: TrafficEvent[] = [];
    net.traffic$.subscribe((e) => events.push(e));
    const a = bind(net.socketFactory(A), scheduler, { port: 10 });
    const b = bind(net.socketFactory(B), scheduler, { port: 20 });
    a.socket.send(Uint8Array.of(0), 20, B);
    a.socket.send(Uint8Array.of(1), 20, B);
    b.socket.send(Uint8Array.of(2), 10, A);
    scheduler.flush();
    expect(events.map((e) => [e.from, e.to, e.index, e.fate, e.arrivals, Array.from(e.data)])).toEqual([
      [{ address: A, port: 10 }, { address: B, port: 20 }, 0, 'delivered', [4], [0]],
      [{ address: A, port: 10 }, { address: B, port: 20 }, 1, 'lost', [], [1]],
      [{ address: B, port: 20 }, { address: A, port: 10 }, 0, 'delivered', [4], [2]],
    ]);
  });

  it('drops deterministically with a drop predicate', () => {
    const { scheduler, net } = setup({ default: { drop: (_d, index) => index % 3 === 0 } });
    const a = bind(net.socketFactory(A), scheduler);
    const b = bind(net.socketFactory(B), scheduler);
    sendNumbered(a.socket, b.socket, 9);
    scheduler.flush();
    expect(b.received.map((r) => numberOf(r.datagram))).toEqual([1, 2, 4, 5, 7, 8]);
    expect(net.linkStats(A, B).dropped).toBe(3);
  });

  function fates(seed: number): string[] {
    const { scheduler, net } = setup({ seed, default: { loss: 0.2, duplicate: 0.1, jitter: 20, reorder: 0.1 } });
    const events: string[] = [];
    net.traffic$.subscribe((e) => events.push(`${e.fate}@${e.arrivals.join(',')}`));
    const a = bind(net.socketFactory(A), scheduler);
    const b = bind(net.socketFactory(B), scheduler);
    sendNumbered(a.socket, b.socket, 300);
    scheduler.flush();
    events.push(b.received.map((r) => numberOf(r.datagram)).join(','));
    return events;
  }

  it('gives the same fates for the same seed, and different ones for another seed', () => {
    const first = fates(2024);
    expect(fates(2024)).toEqual(first);
    expect(fates(2025)).not.toEqual(first);
    expect(new Set(first.slice(0, 300).map((f) => f.split('@')[0])).size).toBe(3);
  });

  it('keeps the loss pattern of a direction independent of other traffic', () => {
    const lostIndexes = (withOtherTraffic: boolean): number[] => {
      const { scheduler, net } = setup({ seed: 8, default: { loss: 0.5 } });
      const lost: number[] = [];
      net.traffic$.subscribe((e) => e.from.address === A && e.to.address === B && e.fate === 'lost' && lost.push(e.index));
      const a = bind(net.socketFactory(A), scheduler);
      const b = bind(net.socketFactory(B), scheduler);
      const c = bind(net.socketFactory('10.0.0.3'), scheduler);
      for (let i = 0; i < 200; i++) {
        a.socket.send(Uint8Array.of(i), b.socket.address().port, B);
        if (withOtherTraffic) c.socket.send(Uint8Array.of(i), b.socket.address().port, B);
      }
      scheduler.flush();
      return lost;
    };
    expect(lostIndexes(true)).toEqual(lostIndexes(false));
    expect(lostIndexes(false).length).toBeGreaterThan(50);
  });

  it('applies links per direction and counts per direction', () => {
    const { scheduler, net } = setup({ seed: 11 });
    net.setLink(A, B, { loss: 0.5, delay: 30 });
    const a = bind(net.socketFactory(A), scheduler);
    const b = bind(net.socketFactory(B), scheduler);
    sendNumbered(a.socket, b.socket, 1000);
    sendNumbered(b.socket, a.socket, 1000);
    scheduler.flush();
    expect(a.received).toHaveLength(1000);
    expect(new Set(a.received.map((r) => r.time))).toEqual(new Set([0]));
    expect(new Set(b.received.map((r) => r.time))).toEqual(new Set([30]));
    const ab = net.linkStats(A, B);
    const ba = net.linkStats(B, A);
    expect(ab.sent).toBe(1000);
    expect(ab.dropped).toBeGreaterThan(400);
    expect(ab.dropped).toBeLessThan(600);
    expect(ab.delivered).toBe(1000 - ab.dropped);
    expect(ba).toEqual({ sent: 1000, delivered: 1000, dropped: 0, duplicated: 0, unreachable: 0, inFlight: 0 });
    const stats = net.stats();
    expect(stats.links.map((l) => [l.from, l.to, l.sent])).toEqual([
      [A, B, 1000],
      [B, A, 1000],
    ]);
    expect(stats.total.dropped).toBe(ab.dropped);
    expect(stats.total.sent).toBe(2000);
  });

  it('setDefault and clearLink change later datagrams only', () => {
    const { scheduler, net } = setup();
    const a = bind(net.socketFactory(A), scheduler);
    const b = bind(net.socketFactory(B), scheduler);
    const port = b.socket.address().port;
    net.setLink(A, B, { delay: 50 });
    a.socket.send(Uint8Array.of(1), port, B);
    net.clearLink(A, B);
    net.setDefault({ delay: 7 });
    a.socket.send(Uint8Array.of(2), port, B);
    scheduler.flush();
    expect(b.received.map((r) => [r.datagram.data[0], r.time])).toEqual([
      [2, 7],
      [1, 50],
    ]);
  });

  it('rejects impairments out of range', () => {
    const { net } = setup();
    expect(() => net.setLink(A, B, { loss: 1.5 })).toThrow(RangeError);
    expect(() => net.setLink(A, B, { duplicate: -0.1 })).toThrow(RangeError);
    expect(() => net.setLink(A, B, { delay: -1 })).toThrow(RangeError);
    expect(() => net.setDefault({ jitter: Infinity })).toThrow(RangeError);
    expect(() => new VirtualNetwork({ scheduler: new VirtualTimeScheduler(), default: { reorder: NaN } })).toThrow(RangeError);
  });

  it('closing a socket frees its port, completes datagrams$ and stops delivery', () => {
    const { scheduler, net } = setup({ default: { delay: 10 } });
    const a = bind(net.socketFactory(A), scheduler);
    const b = bind(net.socketFactory(B), scheduler, { port: 5000 });
    expect(net.isBound(B, 5000)).toBe(true);
    a.socket.send(Uint8Array.of(1), 5000, B);
    scheduler.schedule(() => b.subscription.unsubscribe(), 5);
    scheduler.flush();
    expect(b.done.completed).toBe(true);
    expect(b.received).toHaveLength(0);
    expect(net.isBound(B, 5000)).toBe(false);
    expect(net.stats().total).toMatchObject({ sent: 1, delivered: 0, unreachable: 1, inFlight: 0 });

    // the port can be bound again and receives
    const b2 = bind(net.socketFactory(B), scheduler, { port: 5000 });
    a.socket.send(Uint8Array.of(2), 5000, B);
    scheduler.flush();
    expect(b2.received.map((r) => r.datagram.data[0])).toEqual([2]);
    expect(b.received).toHaveLength(0);
  });

  it('reports send on a closed socket, bad ports and oversize datagrams to onError, asynchronously', () => {
    const scheduler = new VirtualTimeScheduler();
    const net = new VirtualNetwork({ scheduler, maxDatagramSize: 100 });
    const a = bind(net.socketFactory(A), scheduler);
    const errors: string[] = [];
    const onError = (e: Error) => errors.push((e as VirtualNetworkError).code);
    expect(() => a.socket.send(new Uint8Array(101), 9, B, onError)).not.toThrow();
    a.socket.send(Uint8Array.of(1), 0, B, onError);
    a.socket.send(Uint8Array.of(1), 70000, B, onError);
    expect(errors).toEqual([]);
    a.subscription.unsubscribe();
    a.socket.send(Uint8Array.of(1), 9, B, onError);
    a.socket.send(Uint8Array.of(1), 9, B); // without onError: silently dropped
    scheduler.flush();
    expect(errors).toEqual(['EMSGSIZE', 'ERR_SOCKET_BAD_PORT', 'ERR_SOCKET_BAD_PORT', 'ERR_SOCKET_DGRAM_NOT_RUNNING']);
    expect(net.stats().total.sent).toBe(0);
  });

  it('refuses to bind a port in use with EADDRINUSE, per host', () => {
    const { scheduler, net } = setup();
    bind(net.socketFactory(A), scheduler, { port: 4000 });
    const error = bindError(net.socketFactory(A), { port: 4000 });
    expect(error).toBeInstanceOf(Error);
    expect(error!.message).toContain('EADDRINUSE');
    expect(error!.code).toBe('EADDRINUSE');
    // another factory on the same host shares the port space; another host does not
    expect(bindError(net.socketFactory(A), { port: 4000, address: '0.0.0.0' })?.code).toBe('EADDRINUSE');
    expect(bindError(net.socketFactory(B), { port: 4000 })).toBeUndefined();
    expect(bindError(net.socketFactory(A), { port: 4000, address: '10.9.9.9' })?.code).toBe('EADDRNOTAVAIL');
    expect(bindError(net.socketFactory(A), { port: 65536 })?.code).toBe('ERR_SOCKET_BAD_PORT');
  });

  it('allocates ephemeral ports for port 0, counting up from 49152 and skipping ports in use', () => {
    const { scheduler, net } = setup();
    const factory = net.socketFactory(A);
    const s1 = bind(factory, scheduler);
    const s2 = bind(factory, scheduler, { port: 0 });
    bind(factory, scheduler, { port: 49154 });
    const s4 = bind(factory, scheduler);
    expect(s1.socket.address()).toEqual({ address: A, port: 49152, family: 'IPv4' });
    expect(s2.socket.address().port).toBe(49153);
    expect(s4.socket.address().port).toBe(49155);
    s1.subscription.unsubscribe();
    expect(bind(factory, scheduler).socket.address().port).toBe(49156);
    expect(bind(net.socketFactory(B), scheduler).socket.address().port).toBe(49152);
    expect(bind(net.socketFactory('fd00::1'), scheduler).socket.address().family).toBe('IPv6');
    expect(bind(net.socketFactory(), scheduler).socket.address().address).toBe('127.0.0.1');
  });

  it('silently drops datagrams to a port nobody bound, and counts them', () => {
    const { scheduler, net } = setup({ default: { delay: 3 } });
    const a = bind(net.socketFactory(A), scheduler);
    const errors: Error[] = [];
    a.socket.send(Uint8Array.of(1), 9999, B, (e) => errors.push(e));
    a.socket.send(Uint8Array.of(1), 9999, '10.7.7.7', (e) => errors.push(e));
    scheduler.flush();
    expect(errors).toEqual([]);
    expect(net.stats().total).toEqual({ sent: 2, delivered: 0, dropped: 0, duplicated: 0, unreachable: 2, inFlight: 0 });
    expect(net.linkStats(A, B).unreachable).toBe(1);
  });

  it('failSocket errors datagrams$ and unbinds', () => {
    const { scheduler, net } = setup();
    const b = bind(net.socketFactory(B), scheduler, { port: 7 });
    const boom = new Error('boom');
    expect(net.failSocket(B, 7, boom)).toBe(true);
    expect(b.done.error).toBe(boom);
    expect(net.isBound(B, 7)).toBe(false);
    expect(net.failSocket(B, 7)).toBe(false);
    b.subscription.unsubscribe(); // closing after a failure is harmless
    expect(bindError(net.socketFactory(B), { port: 7 })).toBeUndefined();
  });

  it('leaves no scheduled work once everything is delivered and sockets are closed', () => {
    const { scheduler, net } = setup({ default: { delay: 20, jitter: 10, duplicate: 0.3, reorder: 0.3 } });
    const a = bind(net.socketFactory(A), scheduler);
    const b = bind(net.socketFactory(B), scheduler);
    sendNumbered(a.socket, b.socket, 200);
    a.subscription.unsubscribe();
    b.subscription.unsubscribe();
    expect(scheduler.actions.length).toBeGreaterThan(0);
    scheduler.flush();
    expect(scheduler.actions).toHaveLength(0);
    expect(net.stats().total.inFlight).toBe(0);
  });

  it('conserves datagrams: sent + duplicated = delivered + dropped + unreachable (property)', () => {
    const impairment = fc.record(
      {
        loss: fc.double({ min: 0, max: 1, noNaN: true }),
        delay: fc.integer({ min: 0, max: 50 }),
        jitter: fc.integer({ min: 0, max: 20 }),
        duplicate: fc.double({ min: 0, max: 1, noNaN: true }),
        reorder: fc.double({ min: 0, max: 1, noNaN: true }),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.integer(), impairment, fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 100 }), (seed, imp, count, closeAt) => {
        const { scheduler, net } = setup({ seed, default: imp as LinkImpairment });
        const a = bind(net.socketFactory(A), scheduler);
        const b = bind(net.socketFactory(B), scheduler);
        sendNumbered(a.socket, b.socket, count);
        scheduler.schedule(() => b.subscription.unsubscribe(), closeAt);
        scheduler.flush();
        const s = net.stats().total;
        expect(s.sent).toBe(count);
        expect(s.inFlight).toBe(0);
        expect(s.sent + s.duplicated).toBe(s.delivered + s.dropped + s.unreachable);
        expect(b.received).toHaveLength(s.delivered);
        const maxDelay = 2 * ((imp.delay ?? 0) + (imp.jitter ?? 0)) + 1;
        for (const r of b.received) expect(r.time).toBeLessThanOrEqual(Math.min(closeAt, maxDelay));
        expect(scheduler.actions).toHaveLength(0);
      }),
      { numRuns: 200 },
    );
  });

  it('runs in real time on asyncScheduler', async () => {
    const net = new VirtualNetwork({ scheduler: asyncScheduler, default: { delay: 5 } });
    const a = bind(net.socketFactory(A), asyncScheduler);
    const b = bind(net.socketFactory(B), asyncScheduler);
    const start = asyncScheduler.now();
    const got = new Promise<Datagram>((resolve) => b.socket.datagrams$.subscribe(resolve));
    a.socket.send(Uint8Array.of(42), b.socket.address().port, B);
    const d = await got;
    expect(d.data[0]).toBe(42);
    expect(asyncScheduler.now() - start).toBeGreaterThanOrEqual(4);
    a.subscription.unsubscribe();
    b.subscription.unsubscribe();
    expect(net.stats().total.inFlight).toBe(0);
  });
});

describe('fifo links', () => {
  it('keep each direction in order despite jitter, delaying a datagram until the one before it arrived', () => {
    const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
    const network = new VirtualNetwork({ scheduler, seed: 3, default: { delay: 10, jitter: 50, fifo: true } });
    const arrivals: { index: number; time: number }[] = [];
    let tx: DatagramSocket | undefined;
    let rx: DatagramSocket | undefined;
    network.socketFactory('10.0.0.1')({ type: 'udp4', port: 1 }).subscribe((s) => (tx = s));
    network.socketFactory('10.0.0.2')({ type: 'udp4', port: 2 }).subscribe((s) => (rx = s));
    rx!.datagrams$.subscribe((d: Datagram) => arrivals.push({ index: d.data[0]!, time: scheduler.now() }));
    for (let i = 0; i < 200; i++) scheduler.schedule(() => tx!.send(Uint8Array.of(i), 2, '10.0.0.2'), i);
    scheduler.flush();
    expect(arrivals.map((a) => a.index)).toEqual([...Array(200).keys()]);
    // jitter still shows: arrival times are not simply send time + delay
    expect(new Set(arrivals.map((a, i) => a.time - i)).size).toBeGreaterThan(10);
  });
});
