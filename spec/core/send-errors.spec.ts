import { VirtualAction, VirtualTimeScheduler } from 'rxjs';
import { ConnectionClosedError, type Connection } from '../../lib/index';
import { connect, listen, VirtualNetwork } from '../../lib/testing/index';

test('EMSGSIZE on sends ends the connection with an error that says to lower maxDatagramSize', () => {
  const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
  // the path carries at most 1000 bytes, the peers were told 1200
  const network = new VirtualNetwork({ scheduler, maxDatagramSize: 1000 });
  const errors: unknown[] = [];
  listen(network, { host: '10.0.0.2', port: 7000 }).subscribe((c) => c.messages$.subscribe({ error: () => undefined }));
  let client: Connection | undefined;
  let connectError: unknown;
  connect(network, { from: '10.0.0.1', host: '10.0.0.2', port: 7000 }).subscribe({
    next: (c) => {
      client = c;
      c.messages$.subscribe({ error: (e: unknown) => errors.push(e) });
      c.send$.next(Buffer.alloc(5000));
    },
    error: (e: unknown) => (connectError = e),
  });
  scheduler.maxFrames = 10_000;
  scheduler.flush();
  expect(client).toBeDefined();
  expect(errors).toHaveLength(1);
  expect(errors[0]).toBeInstanceOf(ConnectionClosedError);
  expect((errors[0] as Error).message).toMatch(/EMSGSIZE.*lower maxDatagramSize/);
  expect(connectError).toBe(errors[0]); // connect() errors with it too: the connection ended abnormally
});
