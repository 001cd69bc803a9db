import { VirtualAction, VirtualTimeScheduler } from 'rxjs';
import type { Connection } from '../../lib/index';
import { VirtualNetwork, connect, listen } from '../../lib/testing/index';

test('a message pushed into send$ after the close is not lost silently: counted, and a warning says why', () => {
  const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
  const network = new VirtualNetwork({ scheduler });
  const server = listen(network, { host: '10.0.0.2', port: 5000 }).subscribe((c) => c.messages$.subscribe({ error: () => undefined }));
  let client: Connection | undefined;
  const starter = connect(network, { from: '10.0.0.1', host: '10.0.0.2', port: 5000 }).subscribe({ next: (c) => (client = c), error: () => undefined });
  scheduler.maxFrames = 100;
  scheduler.flush();
  // The process's warning channel is the output here (watched, not replaced).
  const emit = jest.spyOn(process, 'emitWarning');
  try {
    client!.close();
    client!.send$.next(Buffer.from('late'));
    client!.send$.next(Buffer.from('later'));
    expect(client!.stats.sendsAfterClose).toBe(2);
    // Once per connection, with the reason it closed.
    expect(emit).toHaveBeenCalledTimes(1);
    expect(String(emit.mock.calls[0]![0])).toContain('pushed into send$ after the connection closed, and was dropped: closed on this side (reason 0)');
  } finally {
    emit.mockRestore();
    starter.unsubscribe();
    server.unsubscribe();
  }
});
