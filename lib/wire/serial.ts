/**
 * RFC 1982 serial-number arithmetic for the 32-bit `seq` and `batch` fields (PROTOCOL.md §4),
 * which wrap from 2^32 - 1 to 0. `>>> 0` folds any JS number result back into 0..2^32-1.
 */

const HALF = 0x8000_0000; // 2^31

/** `a + n` modulo 2^32; `n` may be negative. */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** `(a - b) mod 2^32`, as an unsigned number: how far `a` lies ahead of `b`. */
export function seqDiff(a: number, b: number): number {
  return (a - b) >>> 0;
}

/** True when `a` is after `b`: `(a - b) mod 2^32` is in 1..2^31-1. */
export function seqAfter(a: number, b: number): boolean {
  const d = seqDiff(a, b);
  return d !== 0 && d < HALF;
}

/** True when `a` is before `b`. */
export function seqBefore(a: number, b: number): boolean {
  return seqAfter(b, a);
}

/**
 * The later of `a` and `b`. At exactly 2^31 apart RFC 1982 leaves the order undefined;
 * we then keep `a`, so callers that fold `seqMax(current, incoming)` never move on an ambiguity.
 */
export function seqMax(a: number, b: number): number {
  return seqAfter(b, a) ? b : a;
}
