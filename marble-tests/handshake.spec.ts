import { TestScheduler } from 'rxjs/testing';
import { map } from 'rxjs';
import { ConnectionRefusedError, ConnectTimeoutError } from '../lib/core/errors';
import { handshake } from '../lib/core/handshake';
import { PacketType, type ConnectAckPacket, type ClosePacket, type ConnectPacket } from '../lib/wire/packet';

const connect: ConnectPacket = { type: PacketType.Connect, connectionId: 9, maxDatagramSize: 1200, receiveWindow: 1024, nonce: 42 };
const ackWith = (nonce: number): ConnectAckPacket => ({ type: PacketType.ConnectAck, connectionId: 9, maxDatagramSize: 1200, receiveWindow: 64, nonce });
const refusal: ClosePacket = { type: PacketType.Close, connectionId: 9, reason: 5, text: 'too many connections' };

describe('handshake (starter)', () => {
  let ts: TestScheduler;
  beforeEach(() => (ts = new TestScheduler((a, b) => expect(a).toEqual(b))));

  function run(replies: string, values: Record<string, ConnectAckPacket | ClosePacket>, sentMarbles: string, resultMarbles: string, resultValues?: object, error?: unknown) {
    ts.run(({ hot, expectObservable }) => {
      const sent: number[] = [];
      const config = { connect, deliveryTimeout: 200, connectTimeout: 1000, scheduler: ts, address: '10.0.0.1', port: 5000 };
      const result$ = hot(replies, values).pipe(handshake({ ...config, send: () => sent.push(ts.now()) }), map((p) => p.receiveWindow));
      expectObservable(result$).toBe(resultMarbles, resultValues, error);
      // the CONNECT send times (the operator's side effect), checked once the run is over
      ts.schedule(() => expect(sent).toEqual(sentMarbles.split(',').map(Number)), 2000);
    });
  }

  it('resends CONNECT every deliveryTimeout until the CONNECT_ACK with our nonce', () => {
    run('450ms a', { a: ackWith(42) }, '0,200,400', '450ms (w|)', { w: 64 });
  });

  it('ignores a CONNECT_ACK with another nonce', () => {
    run('150ms x 299ms a', { x: ackWith(7), a: ackWith(42) }, '0,200,400', '450ms (w|)', { w: 64 });
  });

  it('fails with ConnectTimeoutError after connectTimeout', () => {
    run('', {}, '0,200,400,600,800', '1000ms #', undefined, new ConnectTimeoutError('10.0.0.1', 5000, 1000));
  });

  it('fails with ConnectionRefusedError on CLOSE reason 5', () => {
    run('250ms r', { r: refusal }, '0,200', '250ms #', undefined, new ConnectionRefusedError('10.0.0.1:5000 refused the connection: it has too many connections: too many connections; retry later or raise its maxConnections'));
  });
});
