import { TestScheduler } from 'rxjs/testing';
import { ConnectionTimeoutError } from '../lib/core/errors';
import { heartbeat } from '../lib/core/pipelines/heartbeat';
import { ID, harness, ping } from './harness';
import { PacketType } from '../lib/wire/packet';

describe('heartbeat', () => {
  let ts: TestScheduler;
  beforeEach(() => (ts = new TestScheduler((a, b) => expect(a).toEqual(b))));

  it('pings at 1×..pingPacketCount× pingInterval of silence and errors at (count + 1)×', () => {
    ts.run(({ hot, expectObservable }) => {
      const out$ = hot('').pipe(heartbeat({ pingInterval: 100, pingPacketCount: 3, scheduler: ts }));
      expectObservable(out$).toBe('100ms a 99ms b 99ms c 99ms #', { a: 1, b: 2, c: 3 }, new ConnectionTimeoutError(400));
    });
  });

  it('counts again from any packet heard', () => {
    ts.run(({ hot, expectObservable }) => {
      const out$ = hot('150ms x').pipe(heartbeat({ pingInterval: 100, pingPacketCount: 2, scheduler: ts }));
      // ping at 100; heard at 150; pings at 250, 350; dead at 450
      expectObservable(out$).toBe('100ms a 149ms a 99ms b 99ms #', { a: 1, b: 2 }, new ConnectionTimeoutError(300));
    });
  });

  it('on a connection: sends PINGs when idle, answers PING with PING_ACK, closes with reason 1 and ConnectionTimeoutError', () => {
    ts.run(({ hot, expectObservable }) => {
      const { connection, outgoing$ } = harness(ts, { pingInterval: 100, pingPacketCount: 2 }, hot('50ms p', { p: ping(7) }));
      expectObservable(outgoing$, '^ 500ms !').toBe('50ms a 99ms p 99ms p 99ms (cc)', { a: 'PA7', p: 'P', c: 'C1' });
      expectObservable(connection.messages$).toBe('350ms #', undefined, new ConnectionTimeoutError(300));
    });
  });

  it('takes one RTT sample per PING: a duplicated PING_ACK gives no second one', () => {
    ts.run(({ hot }) => {
      // PING 1 leaves at 1000; its PING_ACK arrives at 1020, and a copy of it at 1500 (before PING 2).
      const pingAck = { type: PacketType.PingAck, connectionId: ID, nonce: 1 } as const;
      const { connection } = harness(ts, { pingInterval: 1000, pingPacketCount: 5 }, hot('1020ms a 479ms a', { a: pingAck }));
      ts.schedule(() => expect(connection.stats.rtt).toBe(20), 1200);
      ts.schedule(() => expect(connection.stats.rtt).toBe(20), 1600);
    });
  });
});
