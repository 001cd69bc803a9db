import { createCipheriv, createDecipheriv } from 'node:crypto';
import { HEADER_SIZE, PROTOCOL_VERSION } from '../../wire/packet';
import { SEALED_HEADER_SIZE, SEALED_TYPE } from '../../wire/secure';
import { KEY_SIZE, TAG_SIZE } from './aead';
import type { SessionKeys } from './noise-nk';
import { ReplayWindow } from './replay-window';

/** Packets per key: after this many, both directions move to the next key (Noise's Rekey). */
export const REKEY_INTERVAL = 2 ** 20;
/** A counter this high ends the connection: a new handshake is cheaper than any nonce worry. */
export const MAX_COUNTER = 2 ** 48;
const ALGORITHM = 'chacha20-poly1305';
const MAX_NONCE = Buffer.from('00000000ffffffffffffffff', 'hex');

/** Noise's Rekey(k): the first 32 bytes of ENCRYPT(k, 2^64 - 1, empty, 32 zero bytes). */
export function rekey(key: Uint8Array): Buffer {
  const cipher = createCipheriv(ALGORITHM, key, MAX_NONCE, { authTagLength: TAG_SIZE });
  cipher.setAAD(Buffer.alloc(0), { plaintextLength: KEY_SIZE });
  const next = cipher.update(Buffer.alloc(KEY_SIZE));
  cipher.final();
  return next;
}

/** One direction's key, moved on every REKEY_INTERVAL packets. */
class KeySchedule {
  private epoch = 0;
  private key: Buffer;
  private previous: Buffer | undefined;

  constructor(key: Buffer, private readonly interval: number) {
    this.key = key;
  }

  /** The key for `counter`'s epoch: the current one, the one before (late packets), or the next (derived, not yet kept). */
  keyFor(counter: number): { key: Buffer; epoch: number } | undefined {
    const epoch = Math.floor(counter / this.interval);
    if (epoch === this.epoch) return { key: this.key, epoch };
    if (epoch === this.epoch - 1 && this.previous !== undefined) return { key: this.previous, epoch };
    if (epoch === this.epoch + 1) return { key: rekey(this.key), epoch };
    return undefined;
  }

  /** A packet of `epoch` authenticated: move to it if it is the next one. */
  reached(epoch: number, key: Buffer): void {
    if (epoch !== this.epoch + 1) return;
    this.previous = this.key;
    this.key = key;
    this.epoch = epoch;
  }
}

/**
 * A connection's transport protection after the handshake (docs/protocol.md §13.1): each
 * version-1 packet travels as SEALED — the header and an explicit 64-bit counter in the clear and
 * authenticated, the packet's type and body encrypted — and a datagram is delivered only if it
 * authenticates and its counter is new (replay window).
 */
export class SecureSession {
  private sendCounter = 0;
  private readonly sendKeys: KeySchedule;
  private readonly receiveKeys: KeySchedule;
  private readonly replay = new ReplayWindow();
  /** Datagrams that did not authenticate, or were replays: dropped and counted. */
  rejected = 0;

  constructor(keys: SessionKeys, interval = REKEY_INTERVAL) {
    this.sendKeys = new KeySchedule(keys.send, interval);
    this.receiveKeys = new KeySchedule(keys.receive, interval);
  }

  /** The SEALED datagram carrying the version-1 datagram `plain`; undefined once the counter is spent. */
  seal(plain: Uint8Array): Buffer | undefined {
    const counter = this.sendCounter;
    if (counter >= MAX_COUNTER) return undefined;
    this.sendCounter++;
    const { key, epoch } = this.sendKeys.keyFor(counter)!;
    this.sendKeys.reached(epoch, key);
    const out = Buffer.allocUnsafe(SEALED_HEADER_SIZE + plain.length - HEADER_SIZE + 1 + TAG_SIZE);
    out[0] = PROTOCOL_VERSION;
    out[1] = SEALED_TYPE;
    out.set(plain.subarray(2, HEADER_SIZE), 2);
    writeCounter(out, counter);
    const cipher = createCipheriv(ALGORITHM, key, nonceOf(counter), { authTagLength: TAG_SIZE });
    cipher.setAAD(out.subarray(0, SEALED_HEADER_SIZE), { plaintextLength: plain.length - HEADER_SIZE + 1 });
    let at = SEALED_HEADER_SIZE;
    at += cipher.update(plain.subarray(1, 2)).copy(out, at);
    at += cipher.update(plain.subarray(HEADER_SIZE)).copy(out, at);
    cipher.final();
    cipher.getAuthTag().copy(out, at);
    return out;
  }

  /** The version-1 datagram inside a SEALED one, or undefined (counted) when it is forged, damaged or replayed. */
  open(sealed: Uint8Array): Buffer | undefined {
    if (sealed.length < SEALED_HEADER_SIZE + 1 + TAG_SIZE) return this.reject();
    const counter = readCounter(sealed);
    if (counter >= MAX_COUNTER || !this.replay.mayAccept(counter)) return this.reject();
    const scheduled = this.receiveKeys.keyFor(counter);
    if (scheduled === undefined) return this.reject();
    const bodyEnd = sealed.length - TAG_SIZE;
    const decipher = createDecipheriv(ALGORITHM, scheduled.key, nonceOf(counter), { authTagLength: TAG_SIZE });
    decipher.setAAD(sealed.subarray(0, SEALED_HEADER_SIZE), { plaintextLength: bodyEnd - SEALED_HEADER_SIZE });
    decipher.setAuthTag(sealed.subarray(bodyEnd));
    const inner = decipher.update(sealed.subarray(SEALED_HEADER_SIZE, bodyEnd));
    try {
      decipher.final();
    } catch {
      return this.reject();
    }
    this.replay.accept(counter);
    this.receiveKeys.reached(scheduled.epoch, scheduled.key);
    const plain = Buffer.allocUnsafe(HEADER_SIZE + inner.length - 1);
    plain[0] = PROTOCOL_VERSION;
    plain[1] = inner[0]!;
    plain.set(sealed.subarray(2, HEADER_SIZE), 2);
    inner.copy(plain, HEADER_SIZE, 1);
    return plain;
  }

  private reject(): undefined {
    this.rejected++;
    return undefined;
  }
}

function nonceOf(counter: number): Buffer {
  const nonce = Buffer.alloc(12);
  nonce.writeUInt32LE(counter >>> 0, 4);
  nonce.writeUInt32LE(Math.floor(counter / 2 ** 32), 8);
  return nonce;
}

function writeCounter(out: Buffer, counter: number): void {
  out.writeUInt32BE(Math.floor(counter / 2 ** 32), HEADER_SIZE);
  out.writeUInt32BE(counter >>> 0, HEADER_SIZE + 4);
}

function readCounter(bytes: Uint8Array): number {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return view.readUInt32BE(HEADER_SIZE) * 2 ** 32 + view.readUInt32BE(HEADER_SIZE + 4);
}
