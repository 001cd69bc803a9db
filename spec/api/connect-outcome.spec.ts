/**
 * connect() emits the connection, completes on a normal close (reason 0, from either side) and
 * errors with the connection's typed error on an abnormal one, so that retry() and error
 * handlers see a connection that died.
 */
import { retry } from 'rxjs';
import { ConnectionClosedError, ConnectionTimeoutError, MessageTooLargeError, ProtocolError, type Connection } from '../../lib/index';
import { connect, listen } from '../../lib/testing/index';
import { CloseReason, PacketType, type ConnectPacket } from '../../lib/wire/packet';
import { LISTENER, PORT, STARTER, world } from './world';

const OPTIONS = { from: STARTER, host: LISTENER, port: PORT, pingInterval: 100, pingPacketCount: 2 };

/** A raw listener that accepts every CONNECT and then does only what the test tells it to. */
function rawListener(w: ReturnType<typeof world>) {
  const peer = w.raw(LISTENER, PORT);
  const connects = (): { packet: ConnectPacket; port: number }[] =>
    peer.received.filter((r) => r.packet.type === PacketType.Connect).map((r) => ({ packet: r.packet as ConnectPacket, port: r.from.port }));
  const answered = new Set<number>();
  const answer = (): void => {
    for (const { packet, port } of connects()) {
      if (answered.has(packet.nonce)) continue;
      answered.add(packet.nonce);
      peer.send({ type: PacketType.ConnectAck, connectionId: packet.connectionId, maxDatagramSize: 1200, receiveWindow: 64, nonce: packet.nonce }, port, STARTER);
    }
  };
  const last = () => connects().at(-1)!;
  return {
    connects,
    /** Lets virtual time pass, answering CONNECTs as they come. */
    run: (ms: number) => {
      for (let t = 0; t < ms; t++) {
        answer();
        w.run(1);
      }
    },
    close: (reason: number) => peer.send({ type: PacketType.Close, connectionId: last().packet.connectionId, reason, text: 'test' }, last().port, STARTER),
    ackNeverSent: () =>
      peer.send({ type: PacketType.DataAck, connectionId: last().packet.connectionId, cumulative: 5000, window: 64, ranges: [] }, last().port, STARTER),
  };
}

describe('connect(): completes on a normal close, errors on an abnormal one', () => {
  it('completes when the application closes the connection', () => {
    const w = world();
    w.keep(listen(w.network, { host: LISTENER, port: PORT }).subscribe());
    const started = w.watch(connect(w.network, OPTIONS));
    w.run(50);
    started.values[0]!.close();
    expect(started.end).toEqual({ kind: 'complete' });
    w.close();
  });

  it('completes when the peer closes normally (reason 0)', () => {
    const w = world();
    const accepted: Connection[] = [];
    w.keep(listen(w.network, { host: LISTENER, port: PORT }).subscribe((c) => void accepted.push(c)));
    const started = w.watch(connect(w.network, OPTIONS));
    w.run(50);
    accepted[0]!.close();
    w.run(50);
    expect(started.values).toHaveLength(1);
    expect(started.end).toEqual({ kind: 'complete' });
    w.close();
  });

  it.each([
    [CloseReason.Timeout, ConnectionTimeoutError],
    [CloseReason.ProtocolError, ProtocolError],
    [CloseReason.MessageTooLarge, MessageTooLargeError],
    [CloseReason.ShuttingDown, ConnectionClosedError],
    [200, ProtocolError],
  ])('errors when the peer closes with reason %d, with the same error as messages$ and closed$', (reason, type) => {
    const w = world();
    const peer = rawListener(w);
    const started = w.watch(connect(w.network, OPTIONS));
    peer.run(10);
    const conn = started.values[0]!;
    const messages = w.watch(conn.messages$);
    peer.close(reason);
    peer.run(10);
    expect(started.end).toEqual({ kind: 'error', error: expect.any(type) });
    const error = (started.end as { error: Error }).error;
    expect(messages.end).toEqual({ kind: 'error', error });
    let closedError: unknown;
    conn.closed$.subscribe((info) => (closedError = info.error));
    expect(closedError).toBe(error);
    w.close();
  });

  it('errors with ConnectionTimeoutError when the peer falls silent', () => {
    const w = world();
    const peer = rawListener(w);
    const started = w.watch(connect(w.network, OPTIONS));
    peer.run(10);
    expect(started.values).toHaveLength(1);
    w.run(250);
    expect(started.end).toBeUndefined(); // still pinging: (2 + 1) × 100 ms of silence needed
    w.run(100);
    expect(started.end).toEqual({ kind: 'error', error: expect.any(ConnectionTimeoutError) });
    w.close();
  });

  it('errors with ProtocolError when the peer breaks the protocol (acknowledges a packet never sent)', () => {
    const w = world();
    const peer = rawListener(w);
    const started = w.watch(connect(w.network, OPTIONS));
    peer.run(10);
    peer.ackNeverSent();
    peer.run(10);
    expect(started.end).toEqual({ kind: 'error', error: expect.any(ProtocolError) });
    w.close();
  });

  it('so retry() reconnects after an abnormal end', () => {
    const w = world();
    const peer = rawListener(w);
    const started = w.watch(connect(w.network, OPTIONS).pipe(retry({ count: 1 })));
    peer.run(10);
    peer.close(CloseReason.ShuttingDown);
    peer.run(10);
    expect(peer.connects()).toHaveLength(2);
    expect(started.values).toHaveLength(2);
    expect(started.end).toBeUndefined(); // the second connection is open
    peer.close(CloseReason.ShuttingDown);
    peer.run(10);
    expect(started.end).toEqual({ kind: 'error', error: expect.any(ConnectionClosedError) });
    w.close();
  });
});
