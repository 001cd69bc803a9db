import { TestScheduler } from 'rxjs/testing';
import { map } from 'rxjs';
import { ConnectionTimeoutError } from '../../lib/core/errors';
import { answerPings, keepAlive } from '../../lib/core/pipelines/heartbeat';
import { RttEstimator } from '../../lib/core/rtt';
import { PacketType, type PingAckPacket, type PingPacket } from '../../lib/wire/packet';

describe('keepAlive and answerPings (PING / PING_ACK)', () => {
  let ts: TestScheduler;
  beforeEach(() => (ts = new TestScheduler((a, b) => expect(a).toEqual(b))));

  it('sends numbered PINGs while the peer is silent, samples the RTT from their PING_ACKs, and errors at the timeout', () => {
    ts.run(({ hot, expectObservable }) => {
      const rtt = new RttEstimator(200);
      const pingAck: PingAckPacket = { type: PacketType.PingAck, connectionId: 1, nonce: 1 };
      const pings$ = hot('').pipe(
        keepAlive({ connectionId: 1, pingInterval: 100, pingPacketCount: 2, scheduler: ts, rtt, pingAcks$: hot('130ms a', { a: pingAck }) }),
        map((p) => p.nonce),
      );
      // The PING_ACK is not "heard" here (the source is): only the RTT learns from it.
      expectObservable(pings$).toBe('100ms a 99ms b 99ms #', { a: 1, b: 2 }, new ConnectionTimeoutError(300));
      ts.schedule(() => expect(rtt.srtt).toBe(30), 150);
    });
  });

  it('answers each PING with a PING_ACK echoing its nonce', () => {
    ts.run(({ hot, expectObservable }) => {
      const ping = (nonce: number): PingPacket => ({ type: PacketType.Ping, connectionId: 1, nonce });
      expectObservable(hot('a b', { a: ping(7), b: ping(8) }).pipe(answerPings(), map((p) => `${p.type}:${p.nonce}`))).toBe('a b', { a: '7:7', b: '7:8' });
    });
  });
});
