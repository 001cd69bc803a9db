import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { from, map, of, type Observable } from 'rxjs';

export interface ResolvedHost {
  readonly address: string;
  readonly type: 'udp4' | 'udp6';
}

/**
 * An IP literal as is (synchronously, so virtual-time tests never wait on DNS), a name through
 * the system resolver. Packets are matched against the peer's address as the socket reports it,
 * so a name must become an address first.
 */
export function resolveHost(host: string): Observable<ResolvedHost> {
  const literal = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  const family = isIP(literal);
  if (family !== 0) return of({ address: literal, type: family === 6 ? 'udp6' : 'udp4' });
  return from(lookup(literal)).pipe(map((r) => ({ address: r.address, type: r.family === 6 ? ('udp6' as const) : ('udp4' as const) })));
}
