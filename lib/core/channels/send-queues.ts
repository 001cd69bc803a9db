import { ChannelPacketType, CHANNEL_DATA_HEADER_SIZE, FLAG_UNORDERED } from '../../wire/channels';
import { DATA_HEADER_SIZE, PacketType } from '../../wire/packet';
import type { OutgoingMessage } from '../sender';

/** One channel's sending side: its own batch numbers and queue of messages, sent in order. */
export interface SendChannel {
  readonly id: number;
  readonly priority: number;
  /** DATA for channel 0, CHANNEL_DATA for the others. */
  readonly packetType: typeof PacketType.Data | typeof ChannelPacketType.ChannelData;
  /** Bytes of the packet header: the payload of each packet is the datagram less this. */
  readonly headerSize: number;
  /** CHANNEL_DATA flags of its packets. */
  readonly flags: number;
  nextBatch: number;
  /** Bytes of its messages queued or unacknowledged. */
  bufferedBytes: number;
  readonly queue: OutgoingMessage[];
  head: number;
  /** It has messages queued, so it is in a level's rotation. */
  active: boolean;
}

export function sendChannel(id: number, options: { priority?: number; unordered?: boolean; initialBatch?: number } = {}): SendChannel {
  return {
    id,
    priority: options.priority ?? 0,
    packetType: id === 0 ? PacketType.Data : ChannelPacketType.ChannelData,
    headerSize: id === 0 ? DATA_HEADER_SIZE : CHANNEL_DATA_HEADER_SIZE,
    flags: options.unordered === true ? FLAG_UNORDERED : 0,
    nextBatch: options.initialBatch ?? 0,
    bufferedBytes: 0,
    queue: [],
    head: 0,
    active: false,
  };
}

/** Channels of one priority with messages queued, served in turn, one packet each. */
interface Level {
  readonly priority: number;
  readonly channels: SendChannel[];
  turn: number;
}

/**
 * Which queued message the next packet comes from. Priorities are strict: a packet of a lower
 * level leaves only while no channel of a higher level has anything queued; channels of the same
 * level take turns packet by packet, so a large message does not hold back its neighbours. A
 * message's own packets still leave in order, and a channel's messages one after the other.
 * (Packets in flight are not preempted: a higher level waits at most for the windows to open.)
 */
export class SendQueues {
  /** Only levels with queued messages, highest priority first. */
  private readonly levels: Level[] = [];

  get empty(): boolean {
    return this.levels.length === 0;
  }

  push(message: OutgoingMessage): void {
    const channel = message.channel;
    channel.queue.push(message);
    if (!channel.active) this.activate(channel);
  }

  /** The message whose next packet should leave now, if any. */
  current(): OutgoingMessage | undefined {
    const level = this.levels[0];
    if (level === undefined) return undefined;
    const channel = level.channels[level.turn]!;
    return channel.queue[channel.head];
  }

  /** A packet of `current()` left; `finished`: it was that message's last. The turn moves on. */
  sent(finished: boolean): void {
    const level = this.levels[0]!;
    const channel = level.channels[level.turn]!;
    if (finished) {
      channel.queue[channel.head++] = undefined as unknown as OutgoingMessage;
      if (channel.head === channel.queue.length) {
        channel.queue.length = 0;
        channel.head = 0;
        this.deactivate(level, level.turn);
        return;
      }
      if (channel.head > 64 && channel.head * 2 > channel.queue.length) {
        channel.queue.splice(0, channel.head);
        channel.head = 0;
      }
    }
    if (level.channels.length > 1) level.turn = (level.turn + 1) % level.channels.length;
  }

  /** Takes a queued message out (withdrawn, or expired before it started); false when it is not queued. */
  remove(message: OutgoingMessage): boolean {
    const channel = message.channel;
    const at = channel.queue.indexOf(message, channel.head);
    if (at === -1) return false;
    channel.queue.splice(at, 1);
    if (channel.head === channel.queue.length) {
      channel.queue.length = 0;
      channel.head = 0;
      const level = this.levels.find((l) => l.priority === channel.priority)!;
      this.deactivate(level, level.channels.indexOf(channel));
    }
    return true;
  }

  /** Every queued message, then empty queues (the connection closed). */
  drain(): OutgoingMessage[] {
    const out: OutgoingMessage[] = [];
    for (const level of this.levels) {
      for (const channel of level.channels) {
        for (let i = channel.head; i < channel.queue.length; i++) out.push(channel.queue[i]!);
        channel.queue.length = 0;
        channel.head = 0;
        channel.active = false;
      }
    }
    this.levels.length = 0;
    return out;
  }

  private activate(channel: SendChannel): void {
    channel.active = true;
    let i = 0;
    while (i < this.levels.length && this.levels[i]!.priority > channel.priority) i++;
    const level = this.levels[i];
    if (level !== undefined && level.priority === channel.priority) level.channels.push(channel);
    else this.levels.splice(i, 0, { priority: channel.priority, channels: [channel], turn: 0 });
  }

  private deactivate(level: Level, at: number): void {
    level.channels[at]!.active = false;
    level.channels.splice(at, 1);
    if (level.channels.length === 0) {
      this.levels.splice(this.levels.indexOf(level), 1);
      return;
    }
    if (level.turn > at) level.turn--;
    if (level.turn >= level.channels.length) level.turn = 0;
  }
}
