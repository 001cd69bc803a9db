import { TestScheduler } from 'rxjs/testing';
import { map } from 'rxjs';
import { PacketRoutes, Route } from '../../lib/core/pipelines/route';
import type { Packet } from '../../lib/wire/packet';
import { ack, close, data, describe as name, ping, repeat } from '../harness';

describe('PacketRoutes (the split by packet type)', () => {
  let ts: TestScheduler;
  beforeEach(() => (ts = new TestScheduler((a, b) => expect(a).toEqual(b))));

  it('hands each packet to the route of its type, and ticks heard$ for every one', () => {
    ts.run(({ hot, expectObservable }) => {
      const routes = new PacketRoutes();
      const p: Record<string, Packet> = { d: data(0), a: ack(1), r: repeat({ start: 0, end: 0 }), p: ping(3), c: close(0) };
      hot('darpc', p).subscribe((packet) => routes.route(packet));
      expectObservable(routes.data$.pipe(map(name))).toBe('a', { a: 'D0' });
      expectObservable(routes.dataAck$.pipe(map(name))).toBe('-a', { a: 'A1' });
      expectObservable(routes.repeat$.pipe(map(name))).toBe('--a', { a: 'R0' });
      expectObservable(routes.ping$.pipe(map(name))).toBe('---a', { a: 'P' });
      expectObservable(routes.close$.pipe(map(name))).toBe('----a', { a: 'C0' });
      expectObservable(routes.heard$.pipe(map(() => 'h'))).toBe('hhhhh');
    });
  });
});

describe('Route (a hot stream for internal wiring)', () => {
  it('multicasts to every subscriber, stops giving to one that unsubscribed, and ends them all', () => {
    const route = new Route<number>();
    const a: string[] = [];
    const b: string[] = [];
    const subA = route.subscribe({ next: (v) => a.push(`${v}`), complete: () => a.push('|') });
    route.subscribe({ next: (v) => b.push(`${v}`), complete: () => b.push('|') });
    route.next(1);
    subA.unsubscribe();
    route.next(2);
    const c: string[] = [];
    route.subscribe({ next: (v) => c.push(`${v}`), complete: () => c.push('|') });
    route.next(3);
    route.complete();
    expect(a).toEqual(['1']);
    expect(b).toEqual(['1', '2', '3', '|']);
    expect(c).toEqual(['3', '|']);
  });

  it('gives nothing, and fails nothing, without a subscriber', () => {
    const route = new Route<number>();
    expect(() => route.next(1)).not.toThrow();
    const got: number[] = [];
    route.subscribe((v) => got.push(v));
    route.next(2);
    expect(got).toEqual([2]);
  });
});
