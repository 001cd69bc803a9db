/**
 * listen({ reusePort }): several listeners on one port of 127.0.0.1 where the Node and the system
 * can share it, a typed error where they cannot (never a lone socket that looks like a group).
 */
import { firstValueFrom, type Subscription } from 'rxjs';
import { listen, ReusePortUnsupportedError, RudpError, type SocketAddress } from '../../lib/index';
import { reusePortUnavailable } from '../../lib/node/reuse-port';
import { within } from '../integration/helpers';

const HOST = '127.0.0.1';
const subscriptions: Subscription[] = [];
afterEach(() => subscriptions.splice(0).forEach((s) => s.unsubscribe()));

/** Subscribes listen(); resolves with the bound address, rejects with the listener's error. */
function bind(port: number, reusePort: boolean): Promise<SocketAddress> {
  return within(
    new Promise<SocketAddress>((resolve, reject) => {
      subscriptions.push(listen({ host: HOST, port, reusePort, onListening: resolve }).subscribe({ error: reject }));
    }),
    5000,
    `a listener on port ${port}`,
  );
}

test.each([
  ['20.20.2', 'linux', false],
  ['22.11.0', 'linux', false],
  ['22.12.0', 'linux', true],
  ['23.0.0', 'linux', false],
  ['23.1.0', 'linux', true],
  ['24.0.0', 'linux', true],
  ['26.12.1', 'linux', true],
  ['24.0.0', 'darwin', false],
  ['24.0.0', 'win32', false],
] as const)('Node %s on %s can share a port: %s', (version, platform, expected) => {
  expect(reusePortUnavailable(version, platform) === undefined).toBe(expected);
});

if (reusePortUnavailable() === undefined) {
  test('two listeners with reusePort bind one port; a third without it is refused, with a hint', async () => {
    const first = await bind(0, true);
    const second = await bind(first.port, true);
    expect(second.port).toBe(first.port);
    const refused = await bind(first.port, false).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RudpError);
    expect((refused as Error).message).toMatch(/EADDRINUSE/);
  });

  test('a port held without reusePort refuses a listener that asks to share it, saying so', async () => {
    const holder = await bind(0, false);
    const refused = await bind(holder.port, true).catch((e: unknown) => e);
    expect((refused as Error).message).toMatch(/EADDRINUSE.*held by a socket that does not share it/);
  });
} else {
  test(`on Node ${process.versions.node}: listen({ reusePort: true }) errors with ReusePortUnsupportedError`, async () => {
    const error = await firstValueFrom(listen({ host: HOST, port: 0, reusePort: true })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ReusePortUnsupportedError);
    expect((error as Error).message).toMatch(/cannot share a UDP port.*upgrade Node, or run a single listener/);
  });
}
