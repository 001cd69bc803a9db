/**
 * A listener shut down by its own subscriber ends its connections deliberately: their streams
 * complete (closed$: reason 4, not by the peer, no error), while each peer is still told CLOSE
 * reason 4 and ends with ConnectionClosedError.
 */
import { lastValueFrom } from 'rxjs';
import { ConnectionClosedError, type Connection } from '../../lib/index';
import { connect, listen } from '../../lib/testing/index';
import { CloseReason } from '../../lib/wire/packet';
import { ending, LISTENER, PORT, STARTER, world } from './world';

function shutdown() {
  const w = world();
  const accepted: Connection[] = [];
  const listener = listen(w.network, { host: LISTENER, port: PORT }).subscribe((c) => void accepted.push(c));
  const started = w.watch(connect(w.network, { from: STARTER, host: LISTENER, port: PORT }));
  w.run(50);
  const server = ending(accepted[0]!);
  const client = ending(started.values[0]!);
  return { w, listener, started, server, client, serverConn: accepted[0]! };
}

describe('a listener unsubscribed by its own subscriber', () => {
  it("completes its connections' messages$ and closes them with reason 4, no error", () => {
    const t = shutdown();
    t.listener.unsubscribe();
    expect(t.server.messagesEnd).toEqual({ kind: 'complete' });
    expect(t.server.closed).toEqual({ reason: CloseReason.ShuttingDown, text: 'listener shutting down', byPeer: false, error: undefined });
    expect(t.server.states).toEqual(['open', 'closed']);
    t.w.close();
  });

  it('still tells the peer: CLOSE reason 4, and the peer ends with ConnectionClosedError', () => {
    const t = shutdown();
    t.listener.unsubscribe();
    t.w.run(50);
    expect(t.client.closed).toEqual({ reason: CloseReason.ShuttingDown, text: 'listener shutting down', byPeer: true, error: expect.any(ConnectionClosedError) });
    expect(t.client.messagesEnd).toEqual({ kind: 'error', error: t.client.closed!.error });
    expect(t.started.end).toEqual({ kind: 'error', error: t.client.closed!.error });
    t.w.close();
  });

  it("errors a send() still waiting for its acknowledgement with a typed error that names the shutdown", async () => {
    const t = shutdown();
    t.w.network.setLink(STARTER, LISTENER, { loss: 1 }); // the acknowledgement never comes back
    let error: unknown;
    const waiting = lastValueFrom(t.serverConn.send(Buffer.from('unacknowledged')), { defaultValue: undefined }).catch((e: unknown) => (error = e));
    t.w.run(5);
    t.listener.unsubscribe();
    await waiting;
    expect(error).toBeInstanceOf(ConnectionClosedError);
    expect((error as Error).message).toContain('listener shutting down');
    t.w.close();
  });
});
