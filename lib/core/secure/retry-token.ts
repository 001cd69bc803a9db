import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { TOKEN_SIZE } from '../../wire/secure';

const MAC_SIZE = TOKEN_SIZE - 4;

/**
 * Stateless address validation (as QUIC's Retry and WireGuard's cookie): a token is the time it
 * was made and a MAC, under a secret only this listener knows, over the address, port and
 * connection id it was sent to. A starter that brings it back proves it receives at that address;
 * the listener remembers nothing in between, so spoofed CONNECTs cost it no memory.
 */
export class RetryTokens {
  private readonly secret = randomBytes(32);

  constructor(private readonly lifetimeMs = 10_000) {}

  mint(address: string, port: number, connectionId: number, now: number): Buffer {
    const token = Buffer.alloc(TOKEN_SIZE);
    const seconds = Math.floor(now / 1000) >>> 0;
    token.writeUInt32BE(seconds, 0);
    this.mac(address, port, connectionId, seconds).copy(token, 4);
    return token;
  }

  valid(token: Uint8Array, address: string, port: number, connectionId: number, now: number): boolean {
    if (token.length !== TOKEN_SIZE) return false;
    const seconds = Buffer.from(token.buffer, token.byteOffset, 4).readUInt32BE(0);
    const age = Math.floor(now / 1000) - seconds;
    if (age < 0 || age * 1000 > this.lifetimeMs) return false;
    return timingSafeEqual(this.mac(address, port, connectionId, seconds), token.subarray(4));
  }

  private mac(address: string, port: number, connectionId: number, seconds: number): Buffer {
    return createHmac('sha256', this.secret).update(`${address}\0${port}\0${connectionId}\0${seconds}`).digest().subarray(0, MAC_SIZE);
  }
}
