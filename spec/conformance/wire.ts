/**
 * Version-1 packets as bytes, written from PROTOCOL.md alone: nothing here imports rx-rudp, so
 * the conformance specs do not trust the codec they are checking.
 */

export const T = {
  CONNECT: 0x01,
  CONNECT_ACK: 0x02,
  DATA: 0x03,
  DATA_ACK: 0x04,
  REPEAT: 0x05,
  PING: 0x06,
  PING_ACK: 0x07,
  CLOSE: 0x08,
  DIRECT: 0x09,
} as const;

export const TYPE_NAMES: Record<number, string> = Object.fromEntries(Object.entries(T).map(([name, value]) => [value, name]));

export interface Range {
  readonly start: number;
  readonly end: number;
}

function header(type: number, id: number, size: number): Buffer {
  const buf = Buffer.alloc(size);
  buf[0] = 0x01;
  buf[1] = type;
  buf.writeUInt32BE(id >>> 0, 2);
  return buf;
}

export interface ConnectFields {
  readonly maxDatagramSize?: number;
  readonly receiveWindow?: number;
  readonly nonce: number;
  /** Total datagram size; default 64. */
  readonly size?: number;
  /** Bytes written right after the 8-byte body (the rest of the padding stays zero). */
  readonly padding?: Uint8Array;
}

export function connect(id: number, f: ConnectFields): Buffer {
  const buf = header(T.CONNECT, id, f.size ?? 64);
  buf.writeUInt16BE(f.maxDatagramSize ?? 1200, 6);
  buf.writeUInt16BE(f.receiveWindow ?? 64, 8);
  buf.writeUInt32BE(f.nonce >>> 0, 10);
  if (f.padding !== undefined) Buffer.from(f.padding).copy(buf, 14);
  return buf;
}

export function connectAck(id: number, f: { maxDatagramSize?: number; receiveWindow?: number; nonce: number; extra?: Uint8Array }): Buffer {
  const extra = f.extra ?? new Uint8Array(0);
  const buf = header(T.CONNECT_ACK, id, 14 + extra.length);
  buf.writeUInt16BE(f.maxDatagramSize ?? 1200, 6);
  buf.writeUInt16BE(f.receiveWindow ?? 64, 8);
  buf.writeUInt32BE(f.nonce >>> 0, 10);
  Buffer.from(extra).copy(buf, 14);
  return buf;
}

export function data(id: number, seq: number, batch: number, index: number, count: number, payload: Uint8Array): Buffer {
  const buf = header(T.DATA, id, 18 + payload.length);
  buf.writeUInt32BE(seq >>> 0, 6);
  buf.writeUInt32BE(batch >>> 0, 10);
  buf.writeUInt16BE(index, 14);
  buf.writeUInt16BE(count, 16);
  Buffer.from(payload).copy(buf, 18);
  return buf;
}

export function dataAck(id: number, cumulative: number, window: number, ranges: readonly Range[] = []): Buffer {
  const buf = header(T.DATA_ACK, id, 13 + 8 * ranges.length);
  buf.writeUInt32BE(cumulative >>> 0, 6);
  buf.writeUInt16BE(window, 10);
  buf[12] = ranges.length;
  ranges.forEach((r, i) => {
    buf.writeUInt32BE(r.start >>> 0, 13 + 8 * i);
    buf.writeUInt32BE(r.end >>> 0, 17 + 8 * i);
  });
  return buf;
}

export function repeat(id: number, ranges: readonly Range[]): Buffer {
  const buf = header(T.REPEAT, id, 7 + 8 * ranges.length);
  buf[6] = ranges.length;
  ranges.forEach((r, i) => {
    buf.writeUInt32BE(r.start >>> 0, 7 + 8 * i);
    buf.writeUInt32BE(r.end >>> 0, 11 + 8 * i);
  });
  return buf;
}

export function ping(id: number, nonce: number, type: number = T.PING): Buffer {
  const buf = header(type, id, 10);
  buf.writeUInt32BE(nonce >>> 0, 6);
  return buf;
}

export function pingAck(id: number, nonce: number): Buffer {
  return ping(id, nonce, T.PING_ACK);
}

export function close(id: number, reason: number, text: Uint8Array | string = ''): Buffer {
  const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : Buffer.from(text);
  const buf = header(T.CLOSE, id, 7 + bytes.length);
  buf[6] = reason;
  bytes.copy(buf, 7);
  return buf;
}

export function direct(id: number, payload: Uint8Array): Buffer {
  const buf = header(T.DIRECT, id, 6 + payload.length);
  Buffer.from(payload).copy(buf, 6);
  return buf;
}

/** §12 entries: `id` (u16), `length` (u16), parameters. */
export function extensionList(entries: readonly { id: number; params: Uint8Array; length?: number }[]): Buffer {
  const parts: Buffer[] = [Buffer.from([0x52, 0x58])];
  for (const e of entries) {
    const head = Buffer.alloc(4);
    head.writeUInt16BE(e.id, 0);
    head.writeUInt16BE(e.length ?? e.params.length, 2);
    parts.push(head, Buffer.from(e.params));
  }
  return Buffer.concat(parts);
}

export type ConnectP = { type: typeof T.CONNECT | typeof T.CONNECT_ACK; id: number; maxDatagramSize: number; receiveWindow: number; nonce: number; extension: Buffer; problem?: string };
export type DataP = { type: typeof T.DATA; id: number; seq: number; batch: number; index: number; count: number; payload: Buffer; problem?: string };
export type DataAckP = { type: typeof T.DATA_ACK; id: number; cumulative: number; window: number; ranges: Range[]; problem?: string };
export type RepeatP = { type: typeof T.REPEAT; id: number; ranges: Range[]; problem?: string };
export type PingP = { type: typeof T.PING | typeof T.PING_ACK; id: number; nonce: number; problem?: string };
export type CloseP = { type: typeof T.CLOSE; id: number; reason: number; text: string; problem?: string };
export type DirectP = { type: typeof T.DIRECT; id: number; payload: Buffer; problem?: string };
/** A packet as the peer reads it; `problem` says why it is not a valid version-1 packet (§1), if it is not. */
export type Parsed = ConnectP | DataP | DataAckP | RepeatP | PingP | CloseP | DirectP | { type: -1; id: number; problem: string };

/** RFC 1982: `a` is after `b`. */
export function after(a: number, b: number): boolean {
  const d = (a - b) >>> 0;
  return d >= 1 && d <= 0x7fffffff;
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function ranges(buf: Buffer, offset: number, count: number): Range[] {
  const out: Range[] = [];
  for (let i = 0; i < count && offset + 8 * i + 8 <= buf.length; i++) {
    out.push({ start: buf.readUInt32BE(offset + 8 * i), end: buf.readUInt32BE(offset + 8 * i + 4) });
  }
  return out;
}

/** Ranges well formed as §5/§6 say: start ≤ end, each start after the previous end + 1 (and after `floor`). */
export function rangeProblem(list: readonly Range[], cumulative: number | undefined): string | undefined {
  let floor = cumulative;
  for (const [i, r] of list.entries()) {
    if (((r.end - r.start) >>> 0) > 0x7fffffff) return `range ${i} ends before it starts`;
    if (floor !== undefined && !after(r.start, floor)) return `range ${i} starts at ${r.start}, not after ${floor}`;
    floor = (r.end + 1) >>> 0;
  }
  return undefined;
}

export function parse(buf: Buffer): Parsed {
  if (buf.length < 6) return { type: -1, id: 0, problem: `${buf.length} bytes` };
  const type = buf[1]!;
  const id = buf.readUInt32BE(2);
  const bad = (problem: string): Parsed => ({ type: -1, id, problem });
  if (buf[0] !== 0x01) return bad(`version ${buf[0]}`);
  if (id === 0) return bad('connectionId 0');
  const len = buf.length;
  switch (type) {
    case T.CONNECT:
    case T.CONNECT_ACK: {
      if (len < 14) return bad(`${TYPE_NAMES[type]} of ${len} bytes`);
      const p: Parsed = { type, id, maxDatagramSize: buf.readUInt16BE(6), receiveWindow: buf.readUInt16BE(8), nonce: buf.readUInt32BE(10), extension: buf.subarray(14) };
      if (type === T.CONNECT && len < 64) p.problem = `CONNECT of ${len} bytes`;
      if (p.maxDatagramSize < 576 || p.maxDatagramSize > 65507) p.problem = `maxDatagramSize ${p.maxDatagramSize}`;
      if (p.receiveWindow === 0) p.problem = 'receiveWindow 0';
      return p;
    }
    case T.DATA: {
      if (len < 18) return bad(`DATA of ${len} bytes`);
      const p: Parsed = { type, id, seq: buf.readUInt32BE(6), batch: buf.readUInt32BE(10), index: buf.readUInt16BE(14), count: buf.readUInt16BE(16), payload: buf.subarray(18) };
      if (p.count === 0 || p.index >= p.count) p.problem = `index ${p.index} count ${p.count}`;
      else if (p.payload.length === 0 && p.count !== 1) p.problem = 'empty payload in a batch of several packets';
      return p;
    }
    case T.DATA_ACK: {
      if (len < 13) return bad(`DATA_ACK of ${len} bytes`);
      const count = buf[12]!;
      const p: Parsed = { type, id, cumulative: buf.readUInt32BE(6), window: buf.readUInt16BE(10), ranges: ranges(buf, 13, count) };
      if (len !== 13 + 8 * count) p.problem = `DATA_ACK of ${len} bytes with ${count} ranges`;
      else if (count > 32) p.problem = `${count} ranges`;
      else {
        const problem = rangeProblem(p.ranges, p.cumulative);
        if (problem !== undefined) p.problem = problem;
      }
      return p;
    }
    case T.REPEAT: {
      if (len < 7) return bad(`REPEAT of ${len} bytes`);
      const count = buf[6]!;
      const p: Parsed = { type, id, ranges: ranges(buf, 7, count) };
      if (len !== 7 + 8 * count) p.problem = `REPEAT of ${len} bytes with ${count} ranges`;
      else if (count === 0 || count > 32) p.problem = `${count} ranges`;
      else {
        const problem = rangeProblem(p.ranges, undefined);
        if (problem !== undefined) p.problem = problem;
      }
      return p;
    }
    case T.PING:
    case T.PING_ACK: {
      if (len < 10) return bad(`${TYPE_NAMES[type]} of ${len} bytes`);
      const p: Parsed = { type, id, nonce: buf.readUInt32BE(6) };
      if (len !== 10) p.problem = `${TYPE_NAMES[type]} of ${len} bytes`;
      return p;
    }
    case T.CLOSE: {
      if (len < 7) return bad(`CLOSE of ${len} bytes`);
      let text = '';
      let problem: string | undefined;
      try {
        text = strictUtf8.decode(buf.subarray(7));
      } catch {
        problem = 'CLOSE text is not UTF-8';
      }
      if (len > 130) problem = `CLOSE of ${len} bytes`;
      const p: Parsed = { type, id, reason: buf[6]!, text };
      if (problem !== undefined) p.problem = problem;
      return p;
    }
    case T.DIRECT:
      return { type, id, payload: buf.subarray(6) };
    default:
      return bad(`type ${type}`);
  }
}

/** A small deterministic PRNG (mulberry32), so junk inputs are the same on every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
