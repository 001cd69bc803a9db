/** How many bytes an unvalidated address may be sent per byte received from it (PROTOCOL.md §3, as RFC 9000 §8.1). */
export const AMPLIFICATION_FACTOR = 3;

/**
 * The listener's anti-amplification budget for one connection (PROTOCOL.md §3). A CONNECT's
 * source may be spoofed: until a packet other than CONNECT arrives from it, the connection may
 * send at most three times the bytes it received (CONNECTs included). Within that it behaves as
 * on any open connection; what does not fit waits (DATA) or is skipped (PING, CLOSE, DIRECT).
 * A starter's connection is validated from the start: it chose the address it sends to.
 */
export class AddressValidation {
  private received = 0;
  private sent = 0;

  constructor(private validatedFlag: boolean) {}

  get validated(): boolean {
    return this.validatedFlag;
  }

  /** Bytes that may still be sent now (Infinity once validated). */
  get allowance(): number {
    return this.validatedFlag ? Infinity : AMPLIFICATION_FACTOR * this.received - this.sent;
  }

  /** A CONNECT of `bytes` arrived for the connection. */
  credit(bytes: number): void {
    this.received += bytes;
  }

  /** A packet other than CONNECT arrived from the peer's address and port. */
  validate(): void {
    this.validatedFlag = true;
  }

  /** Records `bytes` about to be sent; false (nothing recorded) when they do not fit. */
  spend(bytes: number): boolean {
    if (this.validatedFlag) return true;
    if (bytes > this.allowance) return false;
    this.sent += bytes;
    return true;
  }
}
