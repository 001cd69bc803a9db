import { RudpError } from '../core/errors';

/**
 * Whether this Node can share a UDP port between sockets (`dgram` `reusePort`, SO_REUSEPORT).
 * Node added the option in 23.1 and 22.12; older versions accept it and silently ignore it, so
 * the second bind would fail with EADDRINUSE, or worse, a lone socket would look like a group.
 */

/** The first release of each line with `reusePort`: 22.12, then 23.1 and every later line. */
const FIRST_WITH_REUSE_PORT: Readonly<Record<number, number>> = { 22: 12, 23: 1 };

/** Why port sharing is unavailable here, or undefined when it is available. */
export function reusePortUnavailable(version: string = process.versions.node, platform: NodeJS.Platform = process.platform): string | undefined {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const supported = major > 23 || (FIRST_WITH_REUSE_PORT[major] !== undefined && minor >= FIRST_WITH_REUSE_PORT[major]!);
  if (!supported) return `Node ${version} cannot share a UDP port (dgram's reusePort needs Node 22.12, 23.1 or later): upgrade Node, or run a single listener`;
  // Linux spreads datagrams over a SO_REUSEPORT group by a hash of the source; elsewhere it is
  // a different option (FreeBSD) or another meaning (macOS: the last socket takes all), untested.
  if (platform !== 'linux') return `UDP port sharing (SO_REUSEPORT spreading peers by source) is supported on Linux only, not on ${platform}: run a single listener`;
  return undefined;
}

/** Port sharing (`reusePort`, `workers`) was asked for on a Node or a system that cannot do it. */
export class ReusePortUnsupportedError extends RudpError {
  override name = 'ReusePortUnsupportedError';
}

/** Throws ReusePortUnsupportedError when port sharing is unavailable here. */
export function assertReusePort(): void {
  const reason = reusePortUnavailable();
  if (reason !== undefined) throw new ReusePortUnsupportedError(reason);
}
