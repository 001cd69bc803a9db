import { firstValueFrom, Subject, take, toArray, mergeMap, tap, switchMap, ReplaySubject, lastValueFrom } from 'rxjs';
import { listen, connect, type Connection } from '../../lib/index';

test('smoke: echo over loopback', async () => {
  const port$ = new ReplaySubject<number>(1);
  const server = listen({ host: '127.0.0.1', port: 0, onListening: (a) => port$.next(a.port) }).subscribe((c) => {
    c.messages$.subscribe({ next: (m) => c.send$.next(m), error: () => {} });
  });
  const port = await firstValueFrom(port$);
  const msgs = [Buffer.from('hello'), Buffer.alloc(100_000, 7), Buffer.alloc(0), Buffer.alloc(3_000_000, 9)];
  const got = await firstValueFrom(connect({ host: '127.0.0.1', port }).pipe(
    switchMap((c) => { for (const m of msgs) c.send$.next(m); return c.messages$.pipe(take(msgs.length), toArray(), tap(() => c.close())); }),
  ));
  expect(got.map((m) => m.length)).toEqual(msgs.map((m) => m.length));
  expect(Buffer.compare(Buffer.from(got[3]!), msgs[3]!)).toBe(0);
  server.unsubscribe();
});
