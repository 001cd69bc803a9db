/**
 * Timing checks that a busy test process cannot break. Datagrams are stamped when this process
 * reads them, which is never before they were sent but may be much later: two queued datagrams
 * read back to back look simultaneous. So spacing between arrivals is not checked; the time from
 * a known earlier instant to each arrival is, which a late read only makes longer.
 */
/**
 * `times`: arrivals of one packet, its first send and then its resends; `since`: an instant
 * before the first send. With back-off from a first timeout of at least `minTimeoutMs` doubling
 * each time (PROTOCOL.md §5), resend k leaves at least minTimeoutMs × (2^k − 1) after the first
 * send. A fixed timer, or one that does not double, fails this from the third resend on.
 */
export function expectBackOff(times: readonly number[], since: number, minTimeoutMs: number): void {
  for (let k = 1; k < times.length; k++) {
    const after = times[k]! - since;
    const atLeast = 0.9 * minTimeoutMs * (2 ** k - 1);
    if (after < atLeast) throw new Error(`resend ${k} came ${after.toFixed(1)} ms after the first send could have left; with back-off it cannot come before ${atLeast.toFixed(1)} ms`);
  }
}
