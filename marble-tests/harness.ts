import { Observable, ReplaySubject, type SchedulerLike } from 'rxjs';
import { ConnectionCore, type ConnectionParams } from '../lib/core/connection';
import { resolveProtocolOptions, type ProtocolOptions } from '../lib/core/options';
import { ChannelPacketType } from '../lib/wire/channels';
import { encode } from '../lib/wire/codec';
import { ProbePacketType } from '../lib/wire/path-mtu';
import { PacketType, type Packet, type SeqRange } from '../lib/wire/packet';

export const ID = 0x1234;

/** A short, readable name for a packet, for marble values: D3 = DATA seq 3, A4 = DATA_ACK cumulative 4, R1-2 = REPEAT 1..2, D5@2 = CHANNEL_DATA seq 5 on channel 2, K6@2 = ABANDON seq 6, M1472 = PROBE of 1472 bytes, MA1472 its PROBE_ACK. */
export function describe(p: Packet): string {
  const ranges = (rs: readonly SeqRange[]): string => rs.map((r) => (r.start === r.end ? `${r.start}` : `${r.start}-${r.end}`)).join(',');
  switch (p.type) {
    case PacketType.Data:
      return `D${p.seq}`;
    case PacketType.DataAck:
      return p.ranges.length === 0 ? `A${p.cumulative}` : `A${p.cumulative}+${ranges(p.ranges)}`;
    case PacketType.Repeat:
      return `R${ranges(p.ranges)}`;
    case PacketType.Ping:
      return 'P';
    case PacketType.PingAck:
      return `PA${p.nonce}`;
    case PacketType.Close:
      return `C${p.reason}`;
    case PacketType.Direct:
      return 'X';
    case PacketType.Connect:
      return 'CONNECT';
    case PacketType.ConnectAck:
      return 'CONNECT_ACK';
    case ChannelPacketType.ChannelData:
      return `D${p.seq}@${p.channel}`;
    case ChannelPacketType.Abandon:
      return `K${p.seq}@${p.channel}`;
    case ProbePacketType.Probe:
      return `M${p.size}`;
    case ProbePacketType.ProbeAck:
      return `MA${p.size}`;
  }
}

export const data = (seq: number, batch = seq, index = 0, count = 1, payload: Uint8Array = Buffer.from([seq & 0xff])): Packet => ({
  type: PacketType.Data,
  connectionId: ID,
  seq,
  batch,
  index,
  count,
  payload,
});
export const ack = (cumulative: number, ranges: SeqRange[] = [], window = 1024): Packet => ({ type: PacketType.DataAck, connectionId: ID, cumulative, window, ranges });
export const repeat = (...ranges: SeqRange[]): Packet => ({ type: PacketType.Repeat, connectionId: ID, ranges });
export const ping = (nonce: number): Packet => ({ type: PacketType.Ping, connectionId: ID, nonce });
export const close = (reason: number): Packet => ({ type: PacketType.Close, connectionId: ID, reason, text: '' });

/**
 * A connection core on `scheduler` whose outgoing packets are an Observable of their short names,
 * and which takes incoming packets from `incoming$` (a hot marble observable).
 */
export function harness(scheduler: SchedulerLike, options: ProtocolOptions, incoming$: Observable<Packet>, extra: Partial<ConnectionParams> = {}) {
  // Replays what was sent at frame 0 before expectObservable subscribed.
  const outgoing = new ReplaySubject<string>();
  const connection = new ConnectionCore({
    id: ID,
    remote: { address: '10.0.0.2', port: 4000 },
    options: resolveProtocolOptions(options),
    scheduler,
    peerMaxDatagramSize: 1200,
    peerReceiveWindow: 1024,
    transmit: (packet) => {
      outgoing.next(describe(packet));
      return encode(packet).length;
    },
    ...extra,
  });
  incoming$.subscribe((p) => connection.ingest(p, encode(p).length));
  return { connection, outgoing$: outgoing.asObservable() };
}
