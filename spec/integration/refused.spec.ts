import { createSocket } from 'node:dgram';
import { firstValueFrom } from 'rxjs';
import { connect, ConnectionRefusedError } from '../../lib/index';

test('connect() to a port where nothing listens fails at once with ConnectionRefusedError (ICMP port unreachable)', async () => {
  // a port that was free a moment ago
  const probe = createSocket('udp4');
  await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
  const port = probe.address().port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));

  const outcome = await firstValueFrom(connect({ host: '127.0.0.1', port, connectTimeout: 5000 })).catch((e: unknown) => e);
  expect(outcome).toBeInstanceOf(ConnectionRefusedError);
  // (not ConnectTimeoutError: the refusal came from the kernel, not from the timer)
  expect((outcome as Error).message).toContain(`nothing is listening at 127.0.0.1:${port}`);
});
