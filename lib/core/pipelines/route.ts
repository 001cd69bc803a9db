import { Observable, type Observer, type Subscriber } from 'rxjs';
import {
  PacketType,
  type ClosePacket,
  type DataAckPacket,
  type DataPacket,
  type DirectPacket,
  type Packet,
  type PingAckPacket,
  type PingPacket,
  type RepeatPacket,
} from '../../wire/packet';
import { ChannelPacketType } from '../../wire/channels';
import type { LanePacket } from '../channels/lanes';
import { ProbePacketType, type ProbeAckPacket, type ProbePacket } from '../../wire/path-mtu';

/**
 * A hot stream for one connection's internal wiring: what `next` is given goes to the current
 * subscribers. A Subject would do the same, but a Subject subscription costs ~700 bytes in RxJS 7
 * and a connection holds a dozen of these: with 10,000 idle connections that is the difference
 * between ~8 and ~28 KiB of heap each. Usually one subscriber; any number work.
 */
export class Route<T> extends Observable<T> implements Observer<T> {
  /** The one subscriber (the usual case), or several. Unsubscribed ones are dropped as they are met. */
  private subscribers: Subscriber<T> | Subscriber<T>[] | undefined;

  // Observable's own subscription hook, the one Subject overrides too: no closure per route.
  protected _subscribe(subscriber: Subscriber<T>): undefined {
    const current = this.live();
    this.subscribers = current === undefined ? subscriber : Array.isArray(current) ? [...current, subscriber] : [current, subscriber];
    return undefined;
  }

  next(value: T): void {
    const current = this.subscribers;
    if (current === undefined) return;
    if (!Array.isArray(current)) return current.next(value); // a closed subscriber ignores it
    for (const subscriber of current) subscriber.next(value);
  }

  error(err: unknown): void {
    for (const subscriber of this.take()) subscriber.error(err);
  }

  complete(): void {
    for (const subscriber of this.take()) subscriber.complete();
  }

  private take(): Subscriber<T>[] {
    const current = this.subscribers;
    this.subscribers = undefined;
    return current === undefined ? [] : Array.isArray(current) ? current : [current];
  }

  /** The subscribers still subscribed. */
  private live(): Subscriber<T> | Subscriber<T>[] | undefined {
    const current = this.subscribers;
    if (current === undefined || !Array.isArray(current)) return current?.closed ? undefined : current;
    const open = current.filter((s) => !s.closed);
    return open.length === 0 ? undefined : open.length === 1 ? open[0] : open;
  }
}

/**
 * The split by packet type: one switch feeds one route per type, so each pipeline subscribes to
 * exactly the packets it handles (O(1) per packet, no filter chain). `heard$` ticks for every
 * valid packet from the peer: liveness (PROTOCOL.md §7) counts them all.
 */
export class PacketRoutes {
  readonly heard$ = new Route<void>();
  /** DATA, and on a connection that negotiated channels, CHANNEL_DATA and ABANDON. */
  readonly data$ = new Route<LanePacket | DataPacket>();
  readonly dataAck$ = new Route<DataAckPacket>();
  readonly repeat$ = new Route<RepeatPacket>();
  readonly ping$ = new Route<PingPacket>();
  readonly pingAck$ = new Route<PingAckPacket>();
  readonly close$ = new Route<ClosePacket>();
  readonly direct$ = new Route<DirectPacket>();
  readonly probe$ = new Route<ProbePacket>();
  readonly probeAck$ = new Route<ProbeAckPacket>();

  /** Set when the connection negotiated channels (docs/protocol.md §13.2): their packets are valid only then. */
  channels = false;
  /** Set when the connection negotiated path-mtu (docs/protocol.md §13.3): PROBE and PROBE_ACK are valid only then. */
  pathMtu = false;

  /** False when the packet is not valid on this connection (an extension it did not negotiate): the caller drops and counts it. */
  route(packet: Packet): boolean {
    if ((packet.type === ChannelPacketType.ChannelData || packet.type === ChannelPacketType.Abandon) && !this.channels) return false;
    if ((packet.type === ProbePacketType.Probe || packet.type === ProbePacketType.ProbeAck) && !this.pathMtu) return false;
    this.heard$.next();
    switch (packet.type) {
      case PacketType.Data:
      case ChannelPacketType.ChannelData:
      case ChannelPacketType.Abandon:
        this.data$.next(packet);
        return true;
      case PacketType.DataAck:
        this.dataAck$.next(packet);
        return true;
      case PacketType.Repeat:
        this.repeat$.next(packet);
        return true;
      case PacketType.Ping:
        this.ping$.next(packet);
        return true;
      case PacketType.PingAck:
        this.pingAck$.next(packet);
        return true;
      case PacketType.Close:
        this.close$.next(packet);
        return true;
      case PacketType.Direct:
        this.direct$.next(packet);
        return true;
      case ProbePacketType.Probe:
        this.probe$.next(packet);
        return true;
      case ProbePacketType.ProbeAck:
        this.probeAck$.next(packet);
        return true;
      default:
        return true; // CONNECT and CONNECT_ACK belong to the endpoint (a resent handshake)
    }
  }
}
