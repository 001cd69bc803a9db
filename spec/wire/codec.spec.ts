import fc from 'fast-check';
import { PROBE_MIN_SIZE, ProbePacketType } from '../../lib/wire/path-mtu';
import {
  PacketType,
  decode,
  encode,
  encodedLength,
  isDecodeError,
  type DecodeErrorCode,
  type Packet,
  type SeqRange,
} from '../../lib/wire';

/** Hex with whitespace allowed, so vectors can be laid out field by field. */
function hex(text: string): Buffer {
  return Buffer.from(text.replace(/\s+/g, ''), 'hex');
}

function expectError(bytes: Uint8Array, code: DecodeErrorCode, maxDatagramSize?: number): void {
  const result = maxDatagramSize === undefined ? decode(bytes) : decode(bytes, maxDatagramSize);
  expect(isDecodeError(result) ? result.error : result).toBe(code);
}

function expectPacket(bytes: Uint8Array): Packet {
  const result = decode(bytes);
  if (isDecodeError(result)) throw new Error(`unexpected ${result.error}: ${result.detail}`);
  return result;
}

// ---------------------------------------------------------------------------------------------
// Golden vectors, written by hand from PROTOCOL.md (header: version, type, connectionId).

const golden: ReadonlyArray<{ name: string; packet: Packet; bytes: Buffer }> = [
  {
    name: 'CONNECT (padded with zeros to 64 bytes)',
    packet: { type: PacketType.Connect, connectionId: 0x12345678, maxDatagramSize: 1200, receiveWindow: 1024, nonce: 0xdeadbeef },
    bytes: hex(`01 01 12345678  04b0 0400 deadbeef ${'00'.repeat(50)}`),
  },
  {
    name: 'CONNECT_ACK',
    packet: { type: PacketType.ConnectAck, connectionId: 0x12345678, maxDatagramSize: 1200, receiveWindow: 1024, nonce: 0xdeadbeef },
    bytes: hex('01 02 12345678  04b0 0400 deadbeef'),
  },
  {
    name: 'DATA',
    packet: {
      type: PacketType.Data,
      connectionId: 0x0a0b0c0d,
      seq: 0xfffffffe,
      batch: 7,
      index: 1,
      count: 3,
      payload: new Uint8Array([0x68, 0x69]),
    },
    bytes: hex('01 03 0a0b0c0d  fffffffe 00000007 0001 0003  6869'),
  },
  {
    name: 'DATA_ACK (ranges across the 2^32 wrap)',
    packet: {
      type: PacketType.DataAck,
      connectionId: 1,
      cumulative: 0xfffffff0,
      window: 512,
      ranges: [
        { start: 0xfffffff2, end: 0xfffffff5 },
        { start: 0xffffffff, end: 3 },
      ],
    },
    bytes: hex('01 04 00000001  fffffff0 0200 02  fffffff2 fffffff5  ffffffff 00000003'),
  },
  {
    name: 'REPEAT',
    packet: { type: PacketType.Repeat, connectionId: 0xcafebabe, ranges: [{ start: 10, end: 12 }] },
    bytes: hex('01 05 cafebabe  01  0000000a 0000000c'),
  },
  {
    name: 'PING',
    packet: { type: PacketType.Ping, connectionId: 2, nonce: 0x01020304 },
    bytes: hex('01 06 00000002  01020304'),
  },
  {
    name: 'PING_ACK',
    packet: { type: PacketType.PingAck, connectionId: 2, nonce: 0x01020304 },
    bytes: hex('01 07 00000002  01020304'),
  },
  {
    name: 'CLOSE (UTF-8 text)',
    packet: { type: PacketType.Close, connectionId: 3, reason: 2, text: 'bye é' },
    bytes: hex('01 08 00000003  02  627965 20 c3a9'),
  },
  {
    name: 'DIRECT',
    packet: { type: PacketType.Direct, connectionId: 4, payload: new Uint8Array([0xff, 0x00, 0x7f]) },
    bytes: hex('01 09 00000004  ff007f'),
  },
  {
    name: 'DATA of an empty message',
    packet: { type: PacketType.Data, connectionId: 5, seq: 0, batch: 0, index: 0, count: 1, payload: new Uint8Array(0) },
    bytes: hex('01 03 00000005  00000000 00000000 0000 0001'),
  },
  {
    name: 'DATA_ACK without ranges',
    packet: { type: PacketType.DataAck, connectionId: 6, cumulative: 42, window: 0, ranges: [] },
    bytes: hex('01 04 00000006  0000002a 0000 00'),
  },
  {
    name: 'CLOSE without text, unknown reason',
    packet: { type: PacketType.Close, connectionId: 7, reason: 200, text: '' },
    bytes: hex('01 08 00000007  c8'),
  },
  {
    name: 'DIRECT, empty',
    packet: { type: PacketType.Direct, connectionId: 8, payload: new Uint8Array(0) },
    bytes: hex('01 09 00000008'),
  },
];

describe('golden vectors', () => {
  it.each(golden)('encodes $name', ({ packet, bytes }) => {
    const encoded = encode(packet);
    expect(encoded.toString('hex')).toBe(bytes.toString('hex'));
    expect(encodedLength(packet)).toBe(bytes.length);
  });

  it.each(golden)('decodes $name', ({ packet, bytes }) => {
    expect(decode(bytes)).toEqual(packet);
  });

  it('covers all nine packet types', () => {
    expect(new Set(golden.map((g) => g.packet.type)).size).toBe(9);
  });
});

describe('decode details', () => {
  it('returns DATA and DIRECT payloads as views into the input, honouring its byteOffset', () => {
    const backing = new Uint8Array(100);
    const datagram = backing.subarray(10, 10 + 21);
    datagram.set(hex('01 03 00000001  00000001 00000002 0000 0001  aabbcc'));
    const data = expectPacket(datagram);
    if (data.type !== PacketType.Data) throw new Error('expected DATA');
    expect(data.payload.buffer).toBe(backing.buffer);
    expect(data.payload.byteOffset).toBe(10 + 18);
    expect(Array.from(data.payload)).toEqual([0xaa, 0xbb, 0xcc]);

    const directBytes = backing.subarray(50, 50 + 8);
    directBytes.set(hex('01 09 00000001  1234'));
    const direct = expectPacket(directBytes);
    if (direct.type !== PacketType.Direct) throw new Error('expected DIRECT');
    expect(direct.payload.buffer).toBe(backing.buffer);
    expect(direct.payload.byteOffset).toBe(50 + 6);
  });

  it('ignores the content of CONNECT padding and accepts longer CONNECTs', () => {
    const bytes = hex(`01 01 00000009  0240 0001 00000000 ${'ab'.repeat(100)}`);
    expect(decode(bytes)).toEqual({
      type: PacketType.Connect,
      connectionId: 9,
      maxDatagramSize: 576,
      receiveWindow: 1,
      nonce: 0,
    });
  });

  it('accepts the limits of every range-checked field', () => {
    expect(expectPacket(hex('01 02 ffffffff  ffe3 ffff ffffffff'))).toMatchObject({ maxDatagramSize: 65507, receiveWindow: 65535 });
    expect(expectPacket(hex('01 03 00000001  00000000 00000000 fffe ffff  00'))).toMatchObject({ index: 65534, count: 65535 });
    const text = 'x'.repeat(123);
    expect(expectPacket(Buffer.concat([hex('01 08 00000001 00'), Buffer.from(text)]))).toMatchObject({ text });
  });

  it('keeps a leading byte order mark in CLOSE text', () => {
    expect(expectPacket(hex('01 08 00000001 00  efbbbf 41'))).toMatchObject({ text: '\ufeffA' });
  });

  it('accepts 32 ranges in DATA_ACK and REPEAT', () => {
    const ranges = Array.from({ length: 32 }, (_, i) => ({ start: 2 * i + 1, end: 2 * i + 1 }));
    const ack: Packet = { type: PacketType.DataAck, connectionId: 1, cumulative: 0, window: 10, ranges };
    const repeat: Packet = { type: PacketType.Repeat, connectionId: 1, ranges };
    expect(decode(encode(ack))).toEqual(ack);
    expect(decode(encode(repeat))).toEqual(repeat);
  });

  it('accepts a datagram exactly at the receiver maxDatagramSize', () => {
    const bytes = Buffer.concat([hex('01 09 00000001'), Buffer.alloc(570)]);
    expect(isDecodeError(decode(bytes, 576))).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------
// One spec per validity rule: a datagram that breaks exactly that rule, and the code it gets.

describe('validity rules', () => {
  describe('header (§1, §2)', () => {
    it.each([0, 1, 5])('too-short: %i bytes', (n) => expectError(hex('0109000000010000').subarray(0, n), 'too-short'));
    it.each([0x00, 0x02, 0xff])('bad-version: version %i', (v) => expectError(hex(`${v.toString(16).padStart(2, '0')} 06 00000001 00000000`), 'bad-version'));
    it.each([0x00, 0x0a, 0xff])('bad-type: type %i', (t) => expectError(hex(`01 ${t.toString(16).padStart(2, '0')} 00000001 00000000`), 'bad-type'));
    it('bad-connection-id: connectionId 0', () => expectError(hex('01 06 00000000 00000000'), 'bad-connection-id'));
    it('bad-length: longer than the receiver maxDatagramSize', () => {
      expectError(Buffer.concat([hex('01 09 00000001'), Buffer.alloc(571)]), 'bad-length', 576);
    });
  });

  describe('CONNECT and CONNECT_ACK (§3)', () => {
    it('bad-length: CONNECT shorter than 64 bytes', () => expectError(hex(`01 01 00000001 04b0 0400 00000001 ${'00'.repeat(49)}`), 'bad-length'));
    it('bad-length: CONNECT of just header and body', () => expectError(hex('01 01 00000001 04b0 0400 00000001'), 'bad-length'));
    it('bad-length: CONNECT_ACK of 13 bytes', () => expectError(hex('01 02 00000001 04b0 0400 000001'), 'bad-length'));
    it('bad-length: CONNECT_ACK of 15 bytes', () => expectError(hex('01 02 00000001 04b0 0400 00000001 00'), 'bad-length'));
    it('bad-field: maxDatagramSize 575', () => expectError(hex(`01 01 00000001 023f 0400 00000001 ${'00'.repeat(50)}`), 'bad-field'));
    it('bad-field: maxDatagramSize 65508', () => expectError(hex('01 02 00000001 ffe4 0400 00000001'), 'bad-field'));
    it('bad-field: maxDatagramSize 0', () => expectError(hex('01 02 00000001 0000 0400 00000001'), 'bad-field'));
    it('bad-field: receiveWindow 0', () => expectError(hex('01 02 00000001 04b0 0000 00000001'), 'bad-field'));
  });

  describe('DATA (§4)', () => {
    it('bad-length: shorter than 18 bytes', () => expectError(hex('01 03 00000001 00000000 00000000 0000 00'), 'bad-length'));
    it('bad-field: count 0', () => expectError(hex('01 03 00000001 00000000 00000000 0000 0000 aa'), 'bad-field'));
    it('bad-field: index == count', () => expectError(hex('01 03 00000001 00000000 00000000 0002 0002 aa'), 'bad-field'));
    it('bad-field: index > count', () => expectError(hex('01 03 00000001 00000000 00000000 ffff 0001 aa'), 'bad-field'));
    it('bad-length: empty payload in a batch of more than one packet', () => {
      expectError(hex('01 03 00000001 00000000 00000000 0001 0002'), 'bad-length');
    });
  });

  describe('DATA_ACK (§5)', () => {
    it('bad-length: shorter than 13 bytes', () => expectError(hex('01 04 00000001 00000000 0000'), 'bad-length'));
    it('bad-length: fewer range bytes than rangeCount says', () => expectError(hex('01 04 00000001 00000000 0000 01 00000001'), 'bad-length'));
    it('bad-length: more range bytes than rangeCount says', () => expectError(hex('01 04 00000001 00000000 0000 00 00000001 00000001'), 'bad-length'));
    it('bad-field: rangeCount 33', () => {
      const ranges = Array.from({ length: 33 }, (_, i) => `${(2 * i + 1).toString(16).padStart(8, '0')}`.repeat(2)).join('');
      expectError(hex(`01 04 00000001 00000000 0000 21 ${ranges}`), 'bad-field');
    });
    it('bad-ranges: start after end', () => expectError(hex('01 04 00000001 00000000 0000 01 00000005 00000004'), 'bad-ranges'));
    it('bad-ranges: end 2^31 after start', () => expectError(hex('01 04 00000001 00000000 0000 01 00000001 80000001'), 'bad-ranges'));
    it('bad-ranges: first start equal to cumulative', () => expectError(hex('01 04 00000001 00000005 0000 01 00000005 00000006'), 'bad-ranges'));
    it('bad-ranges: first start before cumulative', () => expectError(hex('01 04 00000001 00000005 0000 01 00000003 00000006'), 'bad-ranges'));
    it('bad-ranges: first start before cumulative across the wrap', () => {
      expectError(hex('01 04 00000001 00000002 0000 01 ffffffff 00000004'), 'bad-ranges');
    });
    it('bad-ranges: first start 2^31 after cumulative', () => expectError(hex('01 04 00000001 00000000 0000 01 80000000 80000000'), 'bad-ranges'));
    it('bad-ranges: ranges touch', () => {
      expectError(hex('01 04 00000001 00000000 0000 02 00000002 00000003 00000004 00000005'), 'bad-ranges');
    });
    it('bad-ranges: ranges overlap', () => {
      expectError(hex('01 04 00000001 00000000 0000 02 00000002 00000006 00000004 00000008'), 'bad-ranges');
    });
    it('bad-ranges: ranges out of order', () => {
      expectError(hex('01 04 00000001 00000000 0000 02 00000008 00000009 00000002 00000003'), 'bad-ranges');
    });
  });

  describe('REPEAT (§6)', () => {
    it('bad-length: no rangeCount byte', () => expectError(hex('01 05 00000001'), 'bad-length'));
    it('bad-length: fewer range bytes than rangeCount says', () => expectError(hex('01 05 00000001 02 00000001 00000001'), 'bad-length'));
    it('bad-length: more range bytes than rangeCount says', () => expectError(hex('01 05 00000001 01 00000001 00000001 00'), 'bad-length'));
    it('bad-field: rangeCount 0', () => expectError(hex('01 05 00000001 00'), 'bad-field'));
    it('bad-field: rangeCount 33', () => {
      const ranges = Array.from({ length: 33 }, (_, i) => `${(2 * i).toString(16).padStart(8, '0')}`.repeat(2)).join('');
      expectError(hex(`01 05 00000001 21 ${ranges}`), 'bad-field');
    });
    it('bad-ranges: start after end', () => expectError(hex('01 05 00000001 01 00000005 00000004'), 'bad-ranges'));
    it('bad-ranges: ranges touch', () => expectError(hex('01 05 00000001 02 00000002 00000003 00000004 00000005'), 'bad-ranges'));
    it('bad-ranges: ranges overlap', () => expectError(hex('01 05 00000001 02 00000002 00000006 00000006 00000008'), 'bad-ranges'));
    it('bad-ranges: ranges out of order', () => expectError(hex('01 05 00000001 02 00000008 00000009 00000002 00000003'), 'bad-ranges'));
  });

  describe('PING and PING_ACK (§7)', () => {
    it('bad-length: PING of 9 bytes', () => expectError(hex('01 06 00000001 000000'), 'bad-length'));
    it('bad-length: PING of 11 bytes', () => expectError(hex('01 06 00000001 00000000 00'), 'bad-length'));
    it('bad-length: PING_ACK of 6 bytes', () => expectError(hex('01 07 00000001'), 'bad-length'));
    it('bad-length: PING_ACK of 11 bytes', () => expectError(hex('01 07 00000001 00000000 00'), 'bad-length'));
  });

  describe('CLOSE (§8)', () => {
    it('bad-length: no reason byte', () => expectError(hex('01 08 00000001'), 'bad-length'));
    it('bad-length: text of 124 bytes', () => expectError(Buffer.concat([hex('01 08 00000001 00'), Buffer.alloc(124, 0x41)]), 'bad-length'));
    it.each([
      ['a lone 0xff', 'ff'],
      ['an overlong NUL', 'c080'],
      ['an encoded surrogate', 'eda080'],
      ['a truncated sequence', '41 e282'],
      ['a stray continuation byte', '41 80'],
    ])('bad-text: %s', (_, text) => expectError(hex(`01 08 00000001 00 ${text}`), 'bad-text'));
  });
});

// ---------------------------------------------------------------------------------------------
// Properties.

const u32 = fc.integer({ min: 0, max: 0xffffffff });
/** Mostly anywhere, often just below the 2^32 wrap so ranges and seqs cross it. */
const seq = fc.oneof(u32, fc.integer({ min: 0xffffff00, max: 0xffffffff }));
const connectionId = fc.integer({ min: 1, max: 0xffffffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
const distance = fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 0x7fff_ffff }));
const gap = fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 0x7fff_ffff }));

/** Valid increasing ranges: each start `gap` past `floor` (1..2^31-1), each end 0..2^31-1 past its start. */
function rangesAfter(floor: number, minLength: number): fc.Arbitrary<SeqRange[]> {
  return fc.array(fc.tuple(gap, distance), { minLength, maxLength: 32 }).map((steps) => {
    const ranges: SeqRange[] = [];
    let after = floor;
    for (const [g, d] of steps) {
      const start = (after + g) >>> 0;
      const end = (start + d) >>> 0;
      ranges.push({ start, end });
      after = (end + 1) >>> 0;
    }
    return ranges;
  });
}

const closeText = fc
  .oneof(fc.string({ unit: 'binary', maxLength: 60 }), fc.string({ unit: fc.constantFrom('\ufeff', 'a', 'é', '€', '😀', '\u0000'), maxLength: 50 }))
  .filter((s) => Buffer.byteLength(s, 'utf8') <= 123);

const packetArbs: Record<string, fc.Arbitrary<Packet>> = {
  connect: fc.record({
    type: fc.constant(PacketType.Connect),
    connectionId,
    maxDatagramSize: fc.integer({ min: 576, max: 65507 }),
    receiveWindow: fc.integer({ min: 1, max: 65535 }),
    nonce: u32,
  }),
  connectAck: fc.record({
    type: fc.constant(PacketType.ConnectAck),
    connectionId,
    maxDatagramSize: fc.integer({ min: 576, max: 65507 }),
    receiveWindow: fc.integer({ min: 1, max: 65535 }),
    nonce: u32,
  }),
  data: fc
    .tuple(connectionId, seq, seq, fc.oneof(fc.constant(1), fc.integer({ min: 1, max: 65535 })))
    .chain(([connectionId, seq, batch, count]) =>
      fc.record({
        type: fc.constant(PacketType.Data),
        connectionId: fc.constant(connectionId),
        seq: fc.constant(seq),
        batch: fc.constant(batch),
        index: fc.integer({ min: 0, max: count - 1 }),
        count: fc.constant(count),
        payload: fc.uint8Array({ minLength: count === 1 ? 0 : 1, maxLength: 1500 }),
      }),
    ),
  dataAck: fc.tuple(connectionId, seq, u16).chain(([connectionId, cumulative, window]) =>
    rangesAfter(cumulative, 0).map((ranges): Packet => ({ type: PacketType.DataAck, connectionId, cumulative, window, ranges })),
  ),
  repeat: fc.tuple(connectionId, seq).chain(([connectionId, first]) =>
    // The first start is free; build from the seq just before it so `rangesAfter` can place it.
    rangesAfter((first - 1) >>> 0, 1).map((ranges): Packet => ({ type: PacketType.Repeat, connectionId, ranges })),
  ),
  ping: fc.record({ type: fc.constant(PacketType.Ping), connectionId, nonce: u32 }),
  pingAck: fc.record({ type: fc.constant(PacketType.PingAck), connectionId, nonce: u32 }),
  close: fc.record({ type: fc.constant(PacketType.Close), connectionId, reason: fc.integer({ min: 0, max: 255 }), text: closeText }),
  direct: fc.record({ type: fc.constant(PacketType.Direct), connectionId, payload: fc.uint8Array({ maxLength: 1500 }) }),
};

const anyPacket = fc.oneof(...Object.values(packetArbs));

/** The shared check for any bytes `decode` accepts: re-encoding is stable and exact. */
function checkAccepted(bytes: Uint8Array): void {
  const packet = decode(bytes);
  if (isDecodeError(packet)) return;
  const again = encode(packet);
  expect(decode(again)).toEqual(packet);
  if (packet.type === PacketType.Connect) {
    expect(again.length).toBe(64);
    expect(Buffer.compare(again.subarray(0, 14), bytes.subarray(0, 14))).toBe(0);
  } else if (packet.type === ProbePacketType.Probe) {
    // Its padding is read whatever it holds and written as zeros (docs/protocol.md §13.3).
    expect(again.length).toBe(bytes.length);
    expect(Buffer.compare(again.subarray(0, PROBE_MIN_SIZE), bytes.subarray(0, PROBE_MIN_SIZE))).toBe(0);
  } else {
    expect(Buffer.compare(again, bytes)).toBe(0);
  }
}

describe('properties', () => {
  it.each(Object.keys(packetArbs))('decode(encode(p)) equals p for valid %s packets', (name) => {
    fc.assert(
      fc.property(packetArbs[name]!, (packet) => {
        const bytes = encode(packet);
        expect(bytes.length).toBe(encodedLength(packet));
        expect(decode(bytes)).toEqual(packet);
      }),
    );
  });

  it('decode never throws on arbitrary bytes, and what it accepts re-encodes exactly', () => {
    const headerish = fc
      .tuple(fc.integer({ min: 0, max: 10 }), fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ maxLength: 1494 }))
      .map(([type, id, rest]) => Uint8Array.from([1, type, ...id, ...rest]));
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 1500 }), headerish), checkAccepted), { numRuns: 300 });
  });

  it('decode never throws on mutated valid datagrams, and what it accepts re-encodes exactly', () => {
    const flips = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 });
    const mutated = fc.oneof(
      fc.tuple(anyPacket, flips).map(([p, fs]) => {
        const bytes = encode(p);
        for (const [pos, value] of fs) bytes[pos % bytes.length] = value;
        return bytes;
      }),
      fc.tuple(anyPacket, fc.nat()).map(([p, cut]) => {
        const bytes = encode(p);
        return bytes.subarray(0, cut % bytes.length);
      }),
      fc.tuple(anyPacket, fc.uint8Array({ minLength: 1, maxLength: 40 })).map(([p, extra]) => Buffer.concat([encode(p), extra])),
    );
    fc.assert(fc.property(mutated, checkAccepted), { numRuns: 300 });
  });
});
