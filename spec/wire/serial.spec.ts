import fc from 'fast-check';
import { seqAdd, seqAfter, seqBefore, seqDiff, seqMax } from '../../lib/wire';

const u32 = fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0xfffffff0, max: 0xffffffff }), fc.integer({ min: 0, max: 16 }));
const HALF = 0x8000_0000;

describe('serial arithmetic across the 2^32 wrap', () => {
  it('adds with wrap-around', () => {
    expect(seqAdd(0xffffffff, 1)).toBe(0);
    expect(seqAdd(0xfffffffe, 5)).toBe(3);
    expect(seqAdd(0, -1)).toBe(0xffffffff);
    expect(seqAdd(7, 0)).toBe(7);
  });

  it('takes unsigned differences', () => {
    expect(seqDiff(0, 0xffffffff)).toBe(1);
    expect(seqDiff(0xffffffff, 0)).toBe(0xffffffff);
    expect(seqDiff(3, 0xfffffffe)).toBe(5);
    expect(seqDiff(9, 9)).toBe(0);
  });

  it('orders across the wrap', () => {
    expect(seqAfter(0, 0xffffffff)).toBe(true);
    expect(seqBefore(0xffffffff, 0)).toBe(true);
    expect(seqAfter(0xffffffff, 0)).toBe(false);
    expect(seqAfter(5, 5)).toBe(false);
    expect(seqBefore(5, 5)).toBe(false);
    expect(seqAfter(HALF - 1, 0)).toBe(true);
    // exactly half the space apart: neither is after the other (RFC 1982 leaves it undefined)
    expect(seqAfter(HALF, 0)).toBe(false);
    expect(seqAfter(0, HALF)).toBe(false);
    expect(seqMax(0xffffffff, 0)).toBe(0);
    expect(seqMax(0, 0xffffffff)).toBe(0);
    expect(seqMax(3, 3)).toBe(3);
    expect(seqMax(0, HALF)).toBe(0);
  });

  it('a + n is after a for n in 1..2^31-1, and the difference gives n back', () => {
    fc.assert(
      fc.property(u32, fc.integer({ min: 1, max: HALF - 1 }), (a, n) => {
        const b = seqAdd(a, n);
        expect(b).toBeGreaterThanOrEqual(0);
        expect(b).toBeLessThanOrEqual(0xffffffff);
        expect(seqDiff(b, a)).toBe(n);
        expect(seqAfter(b, a)).toBe(true);
        expect(seqBefore(a, b)).toBe(true);
        expect(seqAfter(a, b)).toBe(false);
        expect(seqMax(a, b)).toBe(b);
        expect(seqMax(b, a)).toBe(b);
        expect(seqAdd(b, -n)).toBe(a);
      }),
    );
  });

  it('for any two numbers at most one is after the other', () => {
    fc.assert(
      fc.property(u32, u32, (a, b) => {
        expect(seqAfter(a, b) && seqAfter(b, a)).toBe(false);
        expect(seqAfter(a, b) || seqAfter(b, a)).toBe(a !== b && seqDiff(a, b) !== HALF);
      }),
    );
  });
});
