import fc from 'fast-check';
import { PacketType, decode, encode, encodedLength, isDecodeError, type ConnectAckPacket, type ConnectPacket, type ExtensionEntry, type Packet } from '../../lib/wire';

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');
const CONNECT_HEAD = '01 01 12345678  04b0 0400 deadbeef';
const ACK_HEAD = '01 02 12345678  04b0 0400 deadbeef';

function decoded(bytes: Uint8Array): Packet {
  const result = decode(bytes);
  if (isDecodeError(result)) throw new Error(`unexpected ${result.error}: ${result.detail}`);
  return result;
}

const errorOf = (bytes: Uint8Array): string | undefined => {
  const result = decode(bytes);
  return isDecodeError(result) ? result.error : undefined;
};

/** Entries with distinct non-zero ids, parameters as plain arrays for comparison. */
const entriesArb = fc
  .uniqueArray(fc.integer({ min: 1, max: 0xffff }), { maxLength: 6 })
  .chain((ids) => fc.tuple(...ids.map((id) => fc.uint8Array({ maxLength: 40 }).map((params) => ({ id, params })))))
  .map((entries) => entries as ExtensionEntry[]);

const plain = (entries: readonly ExtensionEntry[] | undefined) => entries?.map((e) => ({ id: e.id, params: [...e.params] }));

describe('§12 extension offers and answers (codec)', () => {
  it('golden: an offer of one entry inside the 64-byte CONNECT, then zeros', () => {
    const packet: ConnectPacket = {
      type: PacketType.Connect,
      connectionId: 0x12345678,
      maxDatagramSize: 1200,
      receiveWindow: 1024,
      nonce: 0xdeadbeef,
      extensions: [{ id: 0xfffe, params: Buffer.from([1, 2, 3]) }],
    };
    const bytes = hex(`${CONNECT_HEAD} 5258 fffe 0003 010203 ${'00'.repeat(41)}`);
    expect(encode(packet)).toEqual(bytes);
    expect(plain((decoded(bytes) as ConnectPacket).extensions)).toEqual([{ id: 0xfffe, params: [1, 2, 3] }]);
  });

  it('golden: an answer makes CONNECT_ACK longer than 14 bytes', () => {
    const packet: ConnectAckPacket = {
      type: PacketType.ConnectAck,
      connectionId: 0x12345678,
      maxDatagramSize: 1200,
      receiveWindow: 1024,
      nonce: 0xdeadbeef,
      extensions: [{ id: 0xfffe, params: Buffer.from([9]) }],
    };
    const bytes = hex(`${ACK_HEAD} 5258 fffe 0001 09`);
    expect(encode(packet)).toEqual(bytes);
    expect(plain((decoded(bytes) as ConnectAckPacket).extensions)).toEqual([{ id: 0xfffe, params: [9] }]);
    // Nothing accepted: the plain 14-byte CONNECT_ACK.
    expect(encodedLength({ ...packet, extensions: [] })).toBe(14);
  });

  it('zero padding, or padding without the marker, is no offer', () => {
    expect(decoded(hex(`${CONNECT_HEAD} ${'00'.repeat(50)}`))).not.toHaveProperty('extensions');
    expect(decoded(hex(`${CONNECT_HEAD} 5259 ${'ff'.repeat(48)}`))).not.toHaveProperty('extensions');
  });

  it('an offer that does not parse makes the CONNECT invalid', () => {
    const pad = (body: string) => {
      const bytes = hex(`${CONNECT_HEAD} ${body}`);
      return bytes.length >= 64 ? bytes : Buffer.concat([bytes, Buffer.alloc(64 - bytes.length)]);
    };
    // An entry running past the datagram.
    expect(errorOf(hex(`${CONNECT_HEAD} 5258 0001 0031 ${'00'.repeat(44)}`))).toBe('bad-extensions');
    // The same id twice.
    expect(errorOf(pad('5258 0007 0000 0007 0000'))).toBe('bad-extensions');
    // A non-zero stray byte where an id would start, and an id without its length.
    expect(errorOf(hex(`${CONNECT_HEAD} 5258 0001 002d ${'00'.repeat(45)} 01`))).toBe('bad-extensions');
    expect(errorOf(hex(`${CONNECT_HEAD} 5258 0001 002c ${'00'.repeat(44)} 0102`))).toBe('bad-extensions');
    // A zero stray byte is padding.
    expect(plain((decoded(hex(`${CONNECT_HEAD} 5258 0001 002d ${'00'.repeat(45)} 00`)) as ConnectPacket).extensions)).toEqual([{ id: 1, params: Array(45).fill(0) }]);
  });

  it('a CONNECT_ACK longer than 14 bytes must carry a list that parses', () => {
    expect(errorOf(hex(`${ACK_HEAD} 52`))).toBe('bad-length'); // 15 bytes
    expect(errorOf(hex(`${ACK_HEAD} 0000`))).toBe('bad-length'); // no marker
    expect(errorOf(hex(`${ACK_HEAD} 5258 0001 0005 01`))).toBe('bad-extensions');
    expect(plain((decoded(hex(`${ACK_HEAD} 5258`)) as ConnectAckPacket).extensions)).toEqual([]);
  });

  it('round trip: any offer, padded to any size, and any answer', () => {
    fc.assert(
      fc.property(entriesArb, fc.integer({ min: 0, max: 1200 }), (extensions, paddedSize) => {
        const connect: ConnectPacket = { type: PacketType.Connect, connectionId: 7, maxDatagramSize: 1200, receiveWindow: 64, nonce: 1, extensions, paddedSize };
        const bytes = encode(connect);
        expect(bytes.length).toBe(Math.max(64, paddedSize, 14 + 2 + extensions.reduce((n, e) => n + 4 + e.params.length, 0)));
        expect(plain((decoded(bytes) as ConnectPacket).extensions)).toEqual(plain(extensions));
        const ack: ConnectAckPacket = { type: PacketType.ConnectAck, connectionId: 7, maxDatagramSize: 1200, receiveWindow: 64, nonce: 1, extensions };
        const answer = decoded(encode(ack)) as ConnectAckPacket;
        expect(plain(answer.extensions ?? [])).toEqual(plain(extensions));
      }),
    );
  });

  it('never throws on a CONNECT or CONNECT_ACK whose tail is random bytes', () => {
    fc.assert(
      fc.property(fc.boolean(), fc.uint8Array({ minLength: 0, maxLength: 200 }), fc.boolean(), (isConnect, tail, marked) => {
        const head = hex(isConnect ? CONNECT_HEAD : ACK_HEAD);
        const bytes = Buffer.concat([head, marked ? hex('5258') : Buffer.alloc(0), tail]);
        const result = decode(bytes);
        if (!isDecodeError(result)) expect(encode(result).length).toBeLessThanOrEqual(Math.max(64, bytes.length));
      }),
    );
  });
});
