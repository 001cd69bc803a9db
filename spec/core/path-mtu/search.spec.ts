import { BLACK_HOLE_TIMEOUTS, MAX_PROBES, PathMtuSearch } from '../../../lib/core/path-mtu/search';
import { probeCeiling } from '../../../lib/core/path-mtu/ceiling';

/** Acknowledges every probe, as a path that carries everything. */
function climb(search: PathMtuSearch): number[] {
  const sizes: number[] = [];
  for (let size = search.probeSize; size !== undefined; size = search.probeSize) {
    expect(search.probeAcked(size)).toBe(true);
    sizes.push(search.datagramSize);
  }
  return sizes;
}

describe('path-MTU search (RFC 8899 over PROBE / PROBE_ACK)', () => {
  it('starts at the version-1 size and climbs the steps to the ceiling, which it tries last', () => {
    const search = new PathMtuSearch(1200, 65507);
    expect(search.datagramSize).toBe(1200);
    expect(search.payloadSize).toBe(1182);
    expect(climb(search)).toEqual([1472, 8972, 16384, 32768, 65507]);
    expect(search.payloadSize).toBe(65507 - 18);
  });

  it('tries only the steps between base and ceiling, less what sealing adds to each', () => {
    expect(climb(new PathMtuSearch(1200, 1472))).toEqual([1472]);
    expect(climb(new PathMtuSearch(1200, 9000))).toEqual([1472, 8972, 9000]);
    expect(climb(new PathMtuSearch(1200 - 40, 65507 - 40, 40))).toEqual([1432, 8932, 16344, 32728, 65467]);
    expect(new PathMtuSearch(1200, 1200).probeSize).toBeUndefined();
    expect(new PathMtuSearch(1472, 1300).probeSize).toBeUndefined();
  });

  it('ignores an acknowledgement of another size (a stale or forged PROBE_ACK)', () => {
    const search = new PathMtuSearch(1200, 65507);
    expect(search.probeAcked(65507)).toBe(false);
    expect(search.probeAcked(1200)).toBe(false);
    expect(search.datagramSize).toBe(1200);
    expect(search.probeSize).toBe(1472);
  });

  it(`stops at the size confirmed when ${MAX_PROBES} PROBEs of the next go unanswered`, () => {
    const search = new PathMtuSearch(1200, 65507);
    search.probeAcked(1472);
    for (let i = 1; i < MAX_PROBES; i++) {
      search.probeLost();
      expect(search.probeSize).toBe(8972);
    }
    search.probeLost();
    expect(search.probeSize).toBeUndefined();
    expect(search.datagramSize).toBe(1472);
  });

  it('a lost PROBE followed by an answered one does not count against the next size', () => {
    const search = new PathMtuSearch(1200, 65507);
    search.probeLost();
    search.probeLost();
    search.probeAcked(1472);
    search.probeLost();
    search.probeLost();
    expect(search.probeSize).toBe(8972);
  });

  it(`falls back to the version-1 size after ${BLACK_HOLE_TIMEOUTS} timeouts of large packets in a row (a black hole)`, () => {
    const search = new PathMtuSearch(1200, 65507);
    climb(search);
    let shrunk = 0;
    search.onShrunk = () => shrunk++;
    for (let i = 1; i < BLACK_HOLE_TIMEOUTS; i++) search.timedOut(65507);
    search.timedOut(1200); // small packets say nothing about the large ones
    expect(search.datagramSize).toBe(65507);
    search.timedOut(65507);
    expect(search.datagramSize).toBe(1200);
    expect(shrunk).toBe(1);
    expect(search.probeSize).toBeUndefined();
  });

  it('random loss is not a black hole: an acknowledged large packet resets the count', () => {
    const search = new PathMtuSearch(1200, 65507);
    climb(search);
    for (let round = 0; round < 10; round++) {
      for (let i = 1; i < BLACK_HOLE_TIMEOUTS; i++) search.timedOut(65507);
      search.acked(65507);
    }
    expect(search.datagramSize).toBe(65507);
  });
});

describe('probe ceiling', () => {
  it("'auto' goes to the largest datagram only towards loopback, to Ethernet's size elsewhere", () => {
    expect(probeCeiling('auto', '127.0.0.1')).toBe(65507);
    expect(probeCeiling('auto', '::1')).toBe(65507);
    expect(probeCeiling('auto', '::ffff:127.0.0.1')).toBe(65507);
    expect(probeCeiling('auto', '192.168.1.7')).toBe(1472);
    expect(probeCeiling('auto', '::ffff:192.168.1.7')).toBe(1472);
    expect(probeCeiling('auto', 'fe80::1')).toBe(1452);
    expect(probeCeiling(8972, '10.0.0.1')).toBe(8972);
    expect(probeCeiling('off', '127.0.0.1')).toBe(0);
  });
});
