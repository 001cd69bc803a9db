import fc from 'fast-check';
import { fragment, packetCount } from '../../lib/wire';

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

describe('fragment', () => {
  it('splits 10,000 bytes at 1200 into 8 x 1182 + 544 (PROTOCOL.md §11)', () => {
    const message = new Uint8Array(10_000).map((_, i) => i & 0xff);
    const parts = fragment(message, 1200);
    expect(parts.map((p) => p.length)).toEqual([1182, 1182, 1182, 1182, 1182, 1182, 1182, 1182, 544]);
    expect(packetCount(10_000, 1200)).toBe(9);
    expect(concat(parts)).toEqual(message);
  });

  it('returns views sharing the message memory, not copies', () => {
    const backing = new Uint8Array(5000);
    const message = backing.subarray(100, 4100);
    const parts = fragment(message, 1200);
    let offset = 100;
    for (const part of parts) {
      expect(part.buffer).toBe(backing.buffer);
      expect(part.byteOffset).toBe(offset);
      offset += part.length;
    }
    message[0] = 42;
    expect(parts[0]![0]).toBe(42);
  });

  it('gives one empty payload for an empty message', () => {
    const parts = fragment(new Uint8Array(0), 1200);
    expect(parts).toHaveLength(1);
    expect(parts[0]!.length).toBe(0);
    expect(packetCount(0, 1200)).toBe(1);
  });

  it.each([1, 2, 3])('uses exactly %i full packets for an exact multiple, with no empty tail', (n) => {
    const parts = fragment(new Uint8Array(n * 1182), 1200);
    expect(parts.map((p) => p.length)).toEqual(Array<number>(n).fill(1182));
    expect(packetCount(n * 1182, 1200)).toBe(n);
  });

  it('handles one byte more than a multiple', () => {
    expect(fragment(new Uint8Array(1183), 1200).map((p) => p.length)).toEqual([1182, 1]);
  });

  it('accepts 65535 packets and refuses 65536', () => {
    const size = 576 - 18;
    expect(fragment(new Uint8Array(65535 * size), 576)).toHaveLength(65535);
    expect(() => fragment(new Uint8Array(65535 * size + 1), 576)).toThrow(RangeError);
  });

  it('refuses a maxDatagramSize with no room for payload', () => {
    expect(() => fragment(new Uint8Array(1), 18)).toThrow(RangeError);
    expect(() => packetCount(1, 1.5)).toThrow(RangeError);
  });

  it('concatenates back to the message, every part but the last full and the last non-empty', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 6000 }), fc.integer({ min: 576, max: 2000 }), (message, mds) => {
        const parts = fragment(message, mds);
        expect(parts).toHaveLength(packetCount(message.length, mds));
        expect(concat(parts)).toEqual(message);
        parts.slice(0, -1).forEach((p) => expect(p.length).toBe(mds - 18));
        if (message.length > 0) expect(parts[parts.length - 1]!.length).toBeGreaterThan(0);
      }),
    );
  });
});
