import { TestScheduler } from 'rxjs/testing';
import { NEVER } from 'rxjs';
import { ProtocolError } from '../lib/core/errors';
import { close, data, harness } from './harness';

const quiet = { pingInterval: 1_000_000 };

describe('close', () => {
  let ts: TestScheduler;
  beforeEach(() => (ts = new TestScheduler((a, b) => expect(a).toEqual(b))));

  it('ends at once on the peer\'s CLOSE: nothing more is sent, messages$ completes', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, quiet, hot('10ms c 5ms d', { c: close(0), d: data(0) }));
      cold('a', { a: Buffer.from('x') }).subscribe((m) => connection.send$.next(m));
      expectObservable(outgoing$, '^ 1000ms !').toBe('a', { a: 'D0' }); // no resend at 200, no ack for D0
      expectObservable(connection.messages$).toBe('10ms |');
      expectObservable(connection.state$).toBe('o 9ms (c|)', { o: 'open', c: 'closed' });
    });
  });

  it('reports an abnormal close reason as a typed error', () => {
    ts.run(({ hot, expectObservable }) => {
      const { connection } = harness(ts, quiet, hot('10ms c', { c: close(2) }));
      expectObservable(connection.messages$).toBe('10ms #', undefined, new ProtocolError('peer closed the connection with a protocol error'));
    });
  });

  it('close() sends CLOSE reason 0 and drops unacknowledged data', () => {
    ts.run(({ cold, hot, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, quiet, hot(''));
      cold('a', { a: Buffer.from('x') }).subscribe((m) => connection.send$.next(m));
      cold('20ms c').subscribe(() => connection.close());
      expectObservable(outgoing$, '^ 1000ms !').toBe('a 19ms (cc)', { a: 'D0', c: 'C0' }) // CLOSE goes out twice (never acknowledged);
      expectObservable(connection.messages$).toBe('20ms |');
    });
  });

  it('completing send$ flushes what was sent, then closes normally', () => {
    ts.run(({ cold, hot, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, quiet, hot('30ms a', { a: { type: 4, connectionId: 0x1234, cumulative: 1, window: 1024, ranges: [] } }));
      cold('a|', { a: Buffer.from('x') }).subscribe(connection.send$);
      expectObservable(outgoing$, '^ 1000ms !').toBe('a 29ms (cc)', { a: 'D0', c: 'C0' });
      expectObservable(connection.state$).toBe('oc 28ms (d|)', { o: 'open', c: 'closing', d: 'closed' });
    });
  });
});

describe('a connection ending (local failures, replay after the close)', () => {
  let ts: TestScheduler;
  beforeEach(() => (ts = new TestScheduler((a, b) => expect(a).toEqual(b))));

  it('send$ erroring closes with reason 4 (a local failure), not 0', () => {
    ts.run(({ hot, cold, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, { pingInterval: 100_000 }, hot(''));
      cold<Uint8Array>('5ms #', undefined, new Error('producer failed')).subscribe(connection.send$);
      expectObservable(outgoing$, '^ 10ms !').toBe('5ms (cc)', { c: 'C4' });
    });
  });

  it('state$ and closed$ replay the end to a subscriber that comes after the close', () => {
    ts.run(() => {
      const { connection } = harness(ts, { pingInterval: 100_000 }, NEVER);
      connection.close();
      const seen: string[] = [];
      connection.state$.subscribe({ next: (s) => seen.push(s), complete: () => seen.push('|') });
      connection.closed$.subscribe((info) => seen.push(`reason ${info.reason}`));
      expect(seen).toEqual(['closed', '|', 'reason 0']);
    });
  });
});
