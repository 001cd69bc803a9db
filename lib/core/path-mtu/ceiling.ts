import { MAX_DATAGRAM_SIZE } from '../../wire/packet';

/** How far path-MTU probing may go: 'auto' (by the peer's address), a datagram size, or 'off'. */
export type ProbeSetting = 'auto' | 'off' | number;

/** UDP payload of a 1500-byte Ethernet frame: 1500 - 20 (IPv4) - 8 (UDP), and - 40 (IPv6) - 8. */
export const ETHERNET_IPV4_DATAGRAM = 1472;
export const ETHERNET_IPV6_DATAGRAM = 1452;

function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.') || address === 'localhost';
}

/**
 * The largest datagram this side probes for towards `address`. Node's `dgram` cannot set the
 * don't-fragment bit, so a probe larger than the first link's MTU is fragmented by the kernel and
 * still arrives: probing cannot tell a path that carries 8972 bytes whole from one that splits
 * them in six (and loses six times as often). 'auto' therefore stops at Ethernet's size, except
 * towards a loopback address, where the kernel carries the largest datagram whole; a number says
 * the user knows the path (jumbo frames, a tunnel).
 */
export function probeCeiling(setting: ProbeSetting, address: string): number {
  if (setting === 'off') return 0;
  if (typeof setting === 'number') return setting;
  if (isLoopback(address)) return MAX_DATAGRAM_SIZE;
  return address.includes(':') && !address.startsWith('::ffff:') ? ETHERNET_IPV6_DATAGRAM : ETHERNET_IPV4_DATAGRAM;
}
