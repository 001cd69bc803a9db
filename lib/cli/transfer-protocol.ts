/**
 * The file-transfer protocol of `rx-rudp send` and `rx-rudp receive`, on top of rx-rudp messages
 * (which arrive whole, once each, in order — so no framing is needed beyond message boundaries).
 *
 * Sender → receiver, for each file in turn:
 *   1. header:  a JSON message {"type":"file","version":1,"name":NAME,"size":BYTES}. NAME is a
 *      base name: the receiver refuses '', '.', '..', and names with '/', '\' or NUL.
 *   2. data:    the file's bytes, in messages of the chunk size (1 MiB by default; at most the
 *      receiver's maxMessageSize), exactly BYTES in all (none for an empty file). The receiver
 *      tells data from control messages by counting: after the header, BYTES of data follow.
 *   3. trailer: a JSON message {"type":"end","sha256":HEX}, the SHA-256 of the bytes sent.
 *   The sender then waits for the receiver's verdict on that file before the next one.
 *
 * Receiver → sender, JSON messages:
 *   {"type":"written","bytes":N}  N bytes of data (all files of this connection) are on disk:
 *      sent each time another WRITTEN_STEP bytes were written. The sender keeps at most the write
 *      window of data not yet reported written, so a receiver whose disk is slower than the
 *      network does not hold the file in memory (messages$ has no backpressure of its own).
 *   {"type":"ok","name":NAME,"size":BYTES,"sha256":HEX,"written":N}  the file is complete, its
 *      SHA-256 matched the trailer, and it was renamed from NAME.part to NAME.
 *   {"type":"error","name":NAME,"reason":TEXT}  the file was refused or failed; its partial
 *      NAME.part is deleted, and the receiver closes the connection once this is acknowledged.
 *
 * The end: after the last "ok", the sender completes `send$` (everything acknowledged, then a
 * normal close). A connection that closes in the middle of a file leaves no NAME and no NAME.part.
 *
 * Channels: both commands offer the channels extension (docs/protocol.md §13.2). When the
 * connection negotiated it, the receiver sends its messages (written, ok, error) on CONTROL_CHANNEL,
 * at a higher priority than channel 0: a report never waits for the retransmission of anything
 * sent on channel 0, and leaves before anything queued there. The sender reads both channels.
 * Header, data and trailer stay on channel 0, in order: header and trailer delimit the data (the
 * receiver counts its bytes), so they must not overtake it.
 * Which channel follows from the negotiation alone, not from the version, so that a pair of
 * different releases still works: a sender or receiver from before channels offers no extension,
 * the connection has channel 0 only (channel(1) throws ChannelsUnsupportedError), and both sides
 * use channel 0 for everything, as version 1 always did. The header's version stays 1: the
 * messages themselves did not change, and an older receiver would refuse another version.
 */

import { ChannelsUnsupportedError, type Channel, type ChannelOptions, type Connection } from '../index';

export const TRANSFER_VERSION = 1;
/** The receiver's messages travel on this channel when the connection negotiated channels. */
export const CONTROL_CHANNEL = 1;
/** Above data (channel 0, priority 0): a report leaves before any data queued beside it. */
export const CONTROL_CHANNEL_OPTIONS: ChannelOptions = { priority: 1 };
export const MIB = 1024 * 1024;
/** Default size of the data messages. */
export const DEFAULT_CHUNK_SIZE = MIB;
/** The receiver reports written bytes every this many. */
export const WRITTEN_STEP = 4 * MIB;
/** Data the sender keeps not yet reported written by the receiver (at least 4 chunks). */
export function writeWindow(chunkSize: number): number {
  return Math.max(32 * MIB, 4 * chunkSize);
}
/** Control messages are small; anything longer where one is expected is a protocol error. */
const MAX_CONTROL_BYTES = 64 * 1024;

export interface FileHeader {
  readonly type: 'file';
  readonly version: number;
  readonly name: string;
  readonly size: number;
}

export interface FileTrailer {
  readonly type: 'end';
  readonly sha256: string;
}

export type ReceiverMessage =
  | { readonly type: 'written'; readonly bytes: number }
  | { readonly type: 'ok'; readonly name: string; readonly size: number; readonly sha256: string; readonly written: number }
  | { readonly type: 'error'; readonly name: string; readonly reason: string };

export function encodeControl(message: FileHeader | FileTrailer | ReceiverMessage): Buffer {
  return Buffer.from(JSON.stringify(message), 'utf8');
}

/** Why `name` may not be written as a file (undefined when it may). */
export function checkName(name: unknown): string | undefined {
  if (typeof name !== 'string' || name === '') return 'the file name is empty';
  if (name === '.' || name === '..') return `'${name}' is not a file name`;
  if (/[/\\\0]/.test(name)) return `'${name.replace(/\0/g, '\\0')}' contains a path separator or NUL: only base names are accepted`;
  if (Buffer.byteLength(name) > 255) return 'the file name is longer than 255 bytes';
  return undefined;
}

function parseJson(bytes: Uint8Array): Record<string, unknown> | string {
  if (bytes.length > MAX_CONTROL_BYTES) return `expected a control message, got ${bytes.length} bytes`;
  try {
    const value: unknown = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // reported below
  }
  return 'expected a JSON control message';
}

const isSize = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
const isSha256 = (s: unknown): s is string => typeof s === 'string' && /^[0-9a-f]{64}$/.test(s);

/** A header, or why the message is not an acceptable one. */
export function decodeHeader(bytes: Uint8Array): FileHeader | string {
  const json = parseJson(bytes);
  if (typeof json === 'string') return `${json} (a file header)`;
  if (json['type'] !== 'file') return `expected a file header, got type ${JSON.stringify(json['type'])}`;
  if (json['version'] !== TRANSFER_VERSION) return `unsupported transfer version ${JSON.stringify(json['version'])} (this receiver speaks ${TRANSFER_VERSION})`;
  const problem = checkName(json['name']);
  if (problem !== undefined) return problem;
  if (!isSize(json['size'])) return `invalid file size ${JSON.stringify(json['size'])}`;
  return { type: 'file', version: TRANSFER_VERSION, name: json['name'] as string, size: json['size'] };
}

/** A trailer, or why the message is not one. */
export function decodeTrailer(bytes: Uint8Array): FileTrailer | string {
  const json = parseJson(bytes);
  if (typeof json === 'string') return `${json} (the file trailer)`;
  if (json['type'] !== 'end' || !isSha256(json['sha256'])) return 'expected the file trailer {"type":"end","sha256":HEX}';
  return { type: 'end', sha256: json['sha256'] };
}

/** A receiver's message, or why it is not one. */
export function decodeReceiverMessage(bytes: Uint8Array): ReceiverMessage | string {
  const json = parseJson(bytes);
  if (typeof json === 'string') return `the receiver sent something else than the transfer protocol: ${json}`;
  switch (json['type']) {
    case 'written':
      if (isSize(json['bytes'])) return { type: 'written', bytes: json['bytes'] };
      break;
    case 'ok':
      if (typeof json['name'] === 'string' && isSize(json['size']) && isSha256(json['sha256']) && isSize(json['written'])) {
        return { type: 'ok', name: json['name'], size: json['size'], sha256: json['sha256'], written: json['written'] };
      }
      break;
    case 'error':
      return { type: 'error', name: String(json['name'] ?? ''), reason: String(json['reason'] ?? 'no reason given') };
  }
  return `the receiver sent an invalid ${JSON.stringify(json['type'])} message`;
}

/**
 * The channel the receiver's messages travel on: CONTROL_CHANNEL when the peer negotiated
 * channels, else the connection's own stream (channel 0), as with a release from before channels.
 */
export function controlChannel(connection: Connection): Channel {
  try {
    return connection.channel(CONTROL_CHANNEL, CONTROL_CHANNEL_OPTIONS);
  } catch (error) {
    if (error instanceof ChannelsUnsupportedError) return connection.channel(0);
    throw error;
  }
}
