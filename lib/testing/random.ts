/**
 * Small seeded pseudo-random numbers for simulations (NOT for anything security related).
 * Deterministic: the same seed always gives the same sequence, on every platform.
 */

/** mulberry32: 32-bit state, one multiply-xorshift round per number; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** murmur3's 32-bit finalizer: spreads every input bit over the output. */
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * A new 32-bit seed from `seed` and a label (FNV-1a over the label, mixed with the seed), so that
 * independent streams (one per link, say) can be derived from one user-given seed.
 */
export function deriveSeed(seed: number, label: string): number {
  let h = 0x811c9dc5 ^ mix32(seed >>> 0);
  for (let i = 0; i < label.length; i++) {
    h ^= label.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return mix32(h >>> 0);
}

/** A seeded random stream with a few conveniences. */
export class Random {
  private readonly source: () => number;

  /** `seed` is used as an unsigned 32-bit integer (fractions are truncated). */
  constructor(readonly seed: number) {
    this.source = mulberry32(seed);
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.source();
  }

  /** Uniform integer in [min, max] (both inclusive, both rounded down to integers). */
  int(min: number, max: number): number {
    const lo = Math.floor(min);
    const hi = Math.floor(max);
    if (hi < lo) throw new RangeError(`Random.int: max (${max}) < min (${min})`);
    return lo + Math.floor(this.source() * (hi - lo + 1));
  }

  /** true with probability `p` (0 never, 1 always). */
  chance(p: number): boolean {
    return this.source() < p;
  }

  /** An independent stream derived from this one's seed and `label` (does not advance this stream). */
  fork(label: string): Random {
    return new Random(deriveSeed(this.seed, label));
  }
}
