/**
 * Channels (docs/protocol.md §13.2) over the virtual network, end to end through listen() and
 * connect(): separate streams, no head-of-line blocking across channels, unordered delivery, the
 * typed error against a peer without channels, and channel options.
 */
import type { Connection } from '../../lib/index';
import { ChannelsUnsupportedError, InvalidOptionError } from '../../lib/index';
import { connect, listen, type LinkImpairment } from '../../lib/testing/index';
import { ChannelPacketType } from '../../lib/wire/channels';
import { decode } from '../../lib/wire/codec';
import { isDecodeError } from '../../lib/wire/packet';
import { LISTENER, PORT, STARTER, world } from '../api/world';

const text = (m: Uint8Array): string => Buffer.from(m).toString();

function pair(options: { listener?: boolean; starter?: boolean; link?: LinkImpairment } = {}) {
  const w = world();
  if (options.link !== undefined) w.network.setLink(STARTER, LISTENER, options.link);
  const accepted: Connection[] = [];
  w.keep(listen(w.network, { host: LISTENER, port: PORT, channels: options.listener ?? true }).subscribe((c) => void accepted.push(c)));
  const started = w.watch(connect(w.network, { from: STARTER, host: LISTENER, port: PORT, channels: options.starter ?? true }));
  w.run(20);
  return { w, server: accepted[0]!, client: started.values[0]! };
}

/** Records each message with the virtual time it arrived. */
function arrivals(w: ReturnType<typeof world>, source: { messages$: Connection['messages$'] }): { at: number; text: string }[] {
  const seen: { at: number; text: string }[] = [];
  w.keep(source.messages$.subscribe((m) => void seen.push({ at: w.scheduler.now(), text: text(m) })));
  return seen;
}

/** A drop rule for the first CHANNEL_DATA on `channel`. */
function dropFirstOn(channel: number): NonNullable<LinkImpairment['drop']> {
  let dropped = false;
  return (datagram) => {
    const p = decode(datagram.data);
    if (dropped || isDecodeError(p) || p.type !== ChannelPacketType.ChannelData || p.channel !== channel) return false;
    return (dropped = true);
  };
}

describe('channels', () => {
  it('carry separate streams both ways; channel 0 is the connection’s own stream', () => {
    const { w, server, client } = pair();
    const onServer = { c0: arrivals(w, server), c1: arrivals(w, server.channel(1)), c7: arrivals(w, server.channel(7)) };
    const onClient = { c7: arrivals(w, client.channel(7)) };
    client.send$.next(Buffer.from('zero'));
    client.channel(1).send$.next(Buffer.from('one'));
    client.channel(7).send$.next(Buffer.from('seven'));
    client.channel(0).send$.next(Buffer.from('zero again'));
    server.channel(7).send$.next(Buffer.from('back on seven'));
    w.run(50);
    expect(onServer.c0.map((a) => a.text)).toEqual(['zero', 'zero again']);
    expect(onServer.c1.map((a) => a.text)).toEqual(['one']);
    expect(onServer.c7.map((a) => a.text)).toEqual(['seven']);
    expect(onClient.c7.map((a) => a.text)).toEqual(['back on seven']);
    expect(client.channel(0)).toBe(client.channel(0));
    expect(client.channel(3)).toBe(client.channel(3));
    w.close();
  });

  it('a message the peer sent before this side opened the channel waits for its first subscriber', () => {
    const { w, server, client } = pair();
    client.channel(4).send$.next(Buffer.from('early'));
    w.run(50);
    const late = arrivals(w, server.channel(4));
    expect(late.map((a) => a.text)).toEqual(['early']);
    w.close();
  });

  it('a loss on one channel delays no message of another, and ordering holds within each', () => {
    const { w, server, client } = pair({ link: { delay: 10, drop: dropFirstOn(1) } });
    const one = arrivals(w, server.channel(1));
    const two = arrivals(w, server.channel(2));
    const start = w.scheduler.now();
    client.channel(1).send$.next(Buffer.from('1a')); // lost, resent
    client.channel(1).send$.next(Buffer.from('1b'));
    client.channel(2).send$.next(Buffer.from('2a'));
    w.run(500);
    expect(two).toEqual([{ at: start + 10, text: '2a' }]);
    expect(one.map((a) => a.text)).toEqual(['1a', '1b']);
    expect(one[0]!.at).toBeGreaterThan(start + 10); // 1a waited for its resend, and 1b for 1a
    expect(one[1]!.at).toBe(one[0]!.at);
    w.close();
  });

  it('an unordered channel delivers each message as soon as it is whole', () => {
    const { w, server, client } = pair({ link: { delay: 10, drop: dropFirstOn(3) } });
    const got = arrivals(w, server.channel(3));
    const start = w.scheduler.now();
    const sending = client.channel(3, { ordered: false });
    sending.send$.next(Buffer.from('first')); // lost, resent
    sending.send$.next(Buffer.alloc(5000, 7)); // five packets
    sending.send$.next(Buffer.from('third'));
    w.run(500);
    expect(got.map((a) => a.text.slice(0, 5))).toEqual(['\x07\x07\x07\x07\x07', 'third', 'first']);
    expect(got[0]!.at).toBe(start + 10);
    w.close();
  });

  it('against a peer without channels: channel(id ≠ 0) throws ChannelsUnsupportedError at once; channel 0 works', () => {
    for (const sides of [{ listener: false }, { starter: false }]) {
      const { w, server, client } = pair(sides);
      for (const conn of [client, server]) {
        expect(() => conn.channel(1)).toThrow(ChannelsUnsupportedError);
        expect(() => conn.channel(1)).toThrow(/did not negotiate channels.*enable channels on both listen\(\) and connect\(\)/);
      }
      const got = arrivals(w, server.channel(0));
      client.channel(0).send$.next(Buffer.from('plain'));
      w.run(50);
      expect(got.map((a) => a.text)).toEqual(['plain']);
      w.close();
    }
  });

  it('checks ids and options: InvalidOptionError naming what is wrong', () => {
    const { w, client } = pair();
    expect(() => client.channel(256)).toThrow(InvalidOptionError);
    expect(() => client.channel(256)).toThrow(/from 0 to 255/);
    expect(() => client.channel(-1)).toThrow(InvalidOptionError);
    expect(() => client.channel(1.5)).toThrow(InvalidOptionError);
    expect(() => client.channel(0, { ordered: false })).toThrow(/channel 0 is the connection's own stream/);
    expect(() => client.channel(2, { ttl: 0 })).toThrow(/ttl/);
    expect(() => client.channel(2, { ttl: 70_000 })).toThrow(/ttl/);
    expect(() => client.channel(2, { priority: 0.5 })).toThrow(/priority/);
    client.channel(2, { ordered: false });
    expect(() => client.channel(2, { ordered: true })).toThrow(/channel 2 options/);
    expect(client.channel(2)).toBe(client.channel(2, { ordered: false }));
    expect(() => client.channel(0).send(Buffer.from('x'), { ttl: 5 })).toThrow(/channel 0/);
    w.close();
  });
});
