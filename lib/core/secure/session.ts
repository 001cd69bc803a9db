import { encode, type EncodingRoom } from '../../wire/codec';
import { HEADER_SIZE, PROTOCOL_VERSION, type Packet } from '../../wire/packet';
import { SEALED_HEADER_SIZE, SEALED_TYPE } from '../../wire/secure';
import { counterNonce, defaultAead, KEY_SIZE, seal, TAG_SIZE, type Aead } from './aead';
import type { SessionKeys } from './noise-nk';
import { ReplayWindow } from './replay-window';

/** Packets per key: after this many, both directions move to the next key (Noise's Rekey). */
export const REKEY_INTERVAL = 2 ** 20;
/** A counter this high ends the connection: a new handshake is cheaper than any nonce worry. */
export const MAX_COUNTER = 2 ** 48;
const MAX_NONCE = Buffer.from('00000000ffffffffffffffff', 'hex');
/** A version-1 packet encoded at offset 9 ends exactly where a SEALED packet's message ends; the tag follows. */
const SEAL_ROOM: EncodingRoom = { before: SEALED_HEADER_SIZE - HEADER_SIZE + 1, after: TAG_SIZE };

/** Noise's Rekey(k): the first 32 bytes of ENCRYPT(k, 2^64 - 1, empty, 32 zero bytes). */
export function rekey(key: Uint8Array): Buffer {
  return seal(key, MAX_NONCE, Buffer.alloc(0), Buffer.alloc(KEY_SIZE)).subarray(0, KEY_SIZE);
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

  /** The key to send `counter` with: the sender's counter only grows, so it moves on at each epoch boundary. */
  sendingKey(counter: number): Buffer {
    const epoch = Math.floor(counter / this.interval);
    if (epoch !== this.epoch) this.reached(epoch, rekey(this.key));
    return this.key;
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
  /** Reused for every packet of each direction (the AEAD reads it at once). */
  private readonly sendNonce = Buffer.alloc(12);
  private readonly receiveNonce = Buffer.alloc(12);

  constructor(
    keys: SessionKeys,
    interval = REKEY_INTERVAL,
    private readonly aead: Aead = defaultAead,
  ) {
    this.sendKeys = new KeySchedule(keys.send, interval);
    this.receiveKeys = new KeySchedule(keys.receive, interval);
  }

  /**
   * `packet` as a SEALED datagram, built in the one buffer it is encoded into: the version-1
   * packet sits at offset 9, so that its type (moved onto byte 14) and body are the message,
   * encrypted in place, with the tag after it and the SEALED header written over the rest.
   * Undefined once the counter is spent. (Not for CONNECT or CONNECT_ACK: they are never sealed.)
   */
  sealPacket(packet: Packet): Buffer | undefined {
    return this.sealInPlace(encode(packet, SEAL_ROOM));
  }

  /** The SEALED datagram carrying the version-1 datagram `plain` (a copy; sealPacket avoids it). */
  seal(plain: Uint8Array): Buffer | undefined {
    const buf = Buffer.allocUnsafe(SEAL_ROOM.before + plain.length + SEAL_ROOM.after);
    buf.set(plain, SEAL_ROOM.before);
    return this.sealInPlace(buf);
  }

  private sealInPlace(buf: Buffer): Buffer | undefined {
    const counter = this.sendCounter;
    if (counter >= MAX_COUNTER) return undefined;
    this.sendCounter++;
    const key = this.sendKeys.sendingKey(counter);
    const at = SEAL_ROOM.before;
    const type = buf[at + 1]!;
    buf.copyWithin(2, at + 2, at + HEADER_SIZE); // the connection id, before anything covers it
    buf[0] = PROTOCOL_VERSION;
    buf[1] = SEALED_TYPE;
    // The message is the type byte, then the body: the type moves onto the byte before the body.
    buf[SEALED_HEADER_SIZE] = type;
    const message = buf.subarray(SEALED_HEADER_SIZE, buf.length - TAG_SIZE);
    writeCounter(buf, counter);
    this.aead.encrypt(buf.subarray(SEALED_HEADER_SIZE), message, buf.subarray(0, SEALED_HEADER_SIZE), counterNonce(counter, this.sendNonce), key);
    return buf;
  }

  /** The version-1 datagram inside a SEALED one, or undefined when it is forged, damaged or replayed. */
  open(sealed: Uint8Array): Buffer | undefined {
    if (sealed.length < SEALED_HEADER_SIZE + 1 + TAG_SIZE) return undefined;
    const counter = readCounter(sealed);
    if (counter >= MAX_COUNTER || !this.replay.mayAccept(counter)) return undefined;
    const scheduled = this.receiveKeys.keyFor(counter);
    if (scheduled === undefined) return undefined;
    // Decrypted at offset 5: the type lands on byte 5, the body from byte 6, where a version-1 packet has it.
    const messageLength = sealed.length - SEALED_HEADER_SIZE - TAG_SIZE;
    const plain = Buffer.allocUnsafe(HEADER_SIZE - 1 + messageLength);
    const authentic = this.aead.decrypt(
      plain.subarray(HEADER_SIZE - 1),
      sealed.subarray(SEALED_HEADER_SIZE),
      sealed.subarray(0, SEALED_HEADER_SIZE),
      counterNonce(counter, this.receiveNonce),
      scheduled.key,
    );
    if (!authentic) return undefined;
    this.replay.accept(counter);
    this.receiveKeys.reached(scheduled.epoch, scheduled.key);
    plain[0] = PROTOCOL_VERSION;
    plain[1] = plain[HEADER_SIZE - 1]!;
    plain.set(sealed.subarray(2, HEADER_SIZE), 2);
    return plain;
  }

}

function writeCounter(out: Buffer, counter: number): void {
  out.writeUInt32BE(Math.floor(counter / 2 ** 32), HEADER_SIZE);
  out.writeUInt32BE(counter >>> 0, HEADER_SIZE + 4);
}

function readCounter(bytes: Uint8Array): number {
  const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return view.readUInt32BE(HEADER_SIZE) * 2 ** 32 + view.readUInt32BE(HEADER_SIZE + 4);
}
