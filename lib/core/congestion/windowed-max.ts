/**
 * The largest value seen over the last `rounds` round trips (BBR's bandwidth filter): one slot per
 * round in a ring, so an old maximum ages out after `rounds` rounds, not after N samples.
 */
export class WindowedMax {
  private readonly rounds: Float64Array;
  private readonly maxima: Float64Array;
  private best = 0;

  constructor(private readonly length: number) {
    this.rounds = new Float64Array(length).fill(-1);
    this.maxima = new Float64Array(length);
  }

  get value(): number {
    return this.best;
  }

  update(value: number, round: number): void {
    const slot = round % this.length;
    if (this.rounds[slot] !== round) {
      this.rounds[slot] = round;
      this.maxima[slot] = value;
    } else if (value > this.maxima[slot]!) this.maxima[slot] = value;
    let best = 0;
    for (let i = 0; i < this.length; i++) {
      if (this.rounds[i]! > round - this.length && this.maxima[i]! > best) best = this.maxima[i]!;
    }
    this.best = best;
  }
}
