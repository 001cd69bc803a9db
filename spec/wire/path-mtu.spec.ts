import fc from 'fast-check';
import { decode, encode } from '../../lib/wire/codec';
import { PacketType, isDecodeError } from '../../lib/wire/packet';
import { pathMtuExtension } from '../../lib/core/path-mtu/extension';
import { PROBE_ACK_SIZE, PROBE_MIN_SIZE, ProbePacketType, type PathMtuPacket } from '../../lib/wire/path-mtu';

const id = fc.integer({ min: 1, max: 0xffffffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const probe = fc.record({ type: fc.constant(ProbePacketType.Probe), connectionId: id, probeId: u32, size: fc.integer({ min: PROBE_MIN_SIZE, max: 65507 }) });
const probeAck = fc.record({ type: fc.constant(ProbePacketType.ProbeAck), connectionId: id, probeId: u32, size: fc.integer({ min: PROBE_MIN_SIZE, max: 65507 }) });

describe('PROBE and PROBE_ACK (docs/protocol.md §13.3)', () => {
  it('decode inverts encode; a PROBE is as long as the size it tries, zero-padded', () => {
    fc.assert(
      fc.property(fc.oneof(probe, probeAck), (packet: PathMtuPacket) => {
        const bytes = encode(packet);
        expect(bytes.length).toBe(packet.type === ProbePacketType.Probe ? packet.size : PROBE_ACK_SIZE);
        if (packet.type === ProbePacketType.Probe) expect(bytes.subarray(PROBE_MIN_SIZE).every((b) => b === 0)).toBe(true);
        expect(decode(bytes)).toEqual(packet);
      }),
    );
  });

  it('matches the hex of the examples', () => {
    expect(encode({ type: ProbePacketType.ProbeAck, connectionId: 0x0a0b0c0d, probeId: 1, size: 1472 }).toString('hex')).toBe('01130a0b0c0d0000000105c0');
    const probe1472 = encode({ type: ProbePacketType.Probe, connectionId: 0x0a0b0c0d, probeId: 1, size: 1472 });
    expect(probe1472.subarray(0, 10).toString('hex')).toBe('01120a0b0c0d00000001');
  });

  it("matches the hex of the offer and answer in docs/protocol.md §13.3's examples", () => {
    const extension = pathMtuExtension();
    const offer = encode({ type: PacketType.Connect, connectionId: 0x0a0b0c0d, maxDatagramSize: 1200, receiveWindow: 1024, nonce: 0x11223344, extensions: [{ id: extension.id, params: extension.offer() }] });
    expect(offer.toString('hex')).toBe('01010a0b0c0d04b00400112233445258' + '00030002ffe3'.padEnd(96, '0'));
    const answer = encode({ type: PacketType.ConnectAck, connectionId: 0x0a0b0c0d, maxDatagramSize: 1200, receiveWindow: 512, nonce: 0x11223344, extensions: [{ id: extension.id, params: extension.accept(extension.offer())! }] });
    expect(answer.toString('hex')).toBe('01020a0b0c0d04b00200112233445258' + '00030002ffe3');
    expect(extension.accept(Buffer.from('023f', 'hex'))).toBeUndefined();
    expect(extension.accept(Buffer.from('ffe300', 'hex'))).toBeUndefined();
  });

  it('a PROBE is read whatever its padding holds', () => {
    const bytes = encode({ type: ProbePacketType.Probe, connectionId: 7, probeId: 9, size: 64 });
    bytes.fill(0xff, PROBE_MIN_SIZE);
    expect(decode(bytes)).toEqual({ type: ProbePacketType.Probe, connectionId: 7, probeId: 9, size: 64 });
  });

  it.each([
    ['a PROBE shorter than 10 bytes', '01120000000700000'.padEnd(18, '0')],
    ['a PROBE_ACK of 11 bytes', '011300000007000000090a'],
    ['a PROBE_ACK of 13 bytes', '011300000007000000090a0b0c'],
    ['a PROBE_ACK naming a size below 10', '01130000000700000009' + '0009'],
  ])('%s is invalid', (_name, hex) => {
    expect(isDecodeError(decode(Buffer.from(hex, 'hex')))).toBe(true);
  });
});
