import { DEFAULTS, resolveProtocolOptions } from '../../lib/core/options';
import { InvalidOptionError } from '../../lib/core/errors';
import { connect, listen } from '../../lib/index';

describe('options', () => {
  it('defaults to PROTOCOL.md §10', () => {
    expect(resolveProtocolOptions()).toEqual({
      deliveryTimeout: 200,
      pingInterval: 1000,
      pingPacketCount: 5,
      connectTimeout: 5000,
      maxDatagramSize: 1200,
      pathMtu: 'auto',
      receiveWindow: 4096,
      maxMessageSize: 16 * 1024 * 1024,
      repeatDelay: 5,
      maxBufferedBytes: 64 * 1024 * 1024,
      redundancy: 'auto',
      congestionControl: 'bbr',
    });
    expect(resolveProtocolOptions({})).toEqual(DEFAULTS);
  });

  it.each([
    ['deliveryTimeout', 0],
    ['deliveryTimeout', 1.5],
    ['pingInterval', -1],
    ['pingPacketCount', 0],
    ['connectTimeout', Number.NaN],
    ['maxDatagramSize', 575],
    ['maxDatagramSize', 65508],
    ['receiveWindow', 0],
    ['receiveWindow', 65536],
    ['maxMessageSize', -1],
    ['repeatDelay', -5],
    ['maxBufferedBytes', 0],
    ['redundancy', 'always'],
    ['congestionControl', 'cubic'],
    ['pathMtu', 'on'],
    ['pathMtu', 575],
    ['pathMtu', 1500.5],
  ])('rejects %s = %p with an error naming the option', (name, value) => {
    const attempt = (): unknown => resolveProtocolOptions({ [name]: value });
    expect(attempt).toThrow(InvalidOptionError);
    expect(attempt).toThrow(new RegExp(`^option ${name} = `));
  });

  it('keeps repeatDelay at most deliveryTimeout / 4', () => {
    expect(resolveProtocolOptions({ deliveryTimeout: 20, repeatDelay: 50 }).repeatDelay).toBe(5);
  });

  it('listen and connect check their own options when called', () => {
    expect(() => listen({ maxConnections: -1 })).toThrow(/maxConnections/);
    expect(() => listen({ port: 70000 })).toThrow(/port/);
    expect(() => connect({ host: '127.0.0.1', port: 0 })).toThrow(/port/);
    expect(() => connect({ host: '', port: 1 })).toThrow(/host/);
    expect(() => connect({ host: '127.0.0.1', port: 1, pingInterval: 0 })).toThrow(/pingInterval/);
  });
});
