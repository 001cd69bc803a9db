/**
 * Which packet counters were already accepted (RFC 6479's sliding bitmap, as WireGuard and DTLS
 * keep): the highest, and a bit for each of the SIZE before it. Older ones are refused, so a
 * replayed datagram is never delivered twice, in fixed memory.
 */
export const REPLAY_WINDOW_SIZE = 2048;

export class ReplayWindow {
  private highest = -1;
  private readonly bits = new Uint32Array(REPLAY_WINDOW_SIZE / 32);

  /** Could `counter` be new? (Checked before the costly decryption; `accept` after it authenticates.) */
  mayAccept(counter: number): boolean {
    if (counter > this.highest) return true;
    if (this.highest - counter >= REPLAY_WINDOW_SIZE) return false;
    return !this.has(counter);
  }

  accept(counter: number): void {
    if (counter > this.highest) {
      const from = Math.max(this.highest + 1, counter - REPLAY_WINDOW_SIZE + 1);
      for (let c = from; c <= counter; c++) this.clear(c);
      this.highest = counter;
    }
    const slot = counter % REPLAY_WINDOW_SIZE;
    this.bits[slot >>> 5]! |= 1 << (slot & 31);
  }

  private has(counter: number): boolean {
    const slot = counter % REPLAY_WINDOW_SIZE;
    return (this.bits[slot >>> 5]! & (1 << (slot & 31))) !== 0;
  }

  private clear(counter: number): void {
    const slot = counter % REPLAY_WINDOW_SIZE;
    this.bits[slot >>> 5]! &= ~(1 << (slot & 31));
  }
}
