import { RudpError } from '../errors';

/**
 * A message with a `ttl` was not acknowledged in time: the sender abandoned it and told the peer
 * to skip it, so it is never delivered late (it may still have arrived before the deadline).
 */
export class MessageExpiredError extends RudpError {
  override name = 'MessageExpiredError';
  constructor(readonly channel: number, readonly ttl: number, readonly size: number) {
    super(
      `a ${size}-byte message on channel ${channel} was not acknowledged within its ttl of ${ttl} ms, so it was abandoned ` +
        `and the peer skips it; raise the ttl, or send it without one if it must arrive`,
    );
  }
}

/** `channel(id)` for an id other than 0 on a connection whose peer did not negotiate channels. */
export class ChannelsUnsupportedError extends RudpError {
  override name = 'ChannelsUnsupportedError';
  constructor(readonly channel: number) {
    super(
      `channel ${channel} is not available: the peer did not negotiate channels (a version-1 peer, or one started without ` +
        `channels: true), so only channel 0, the connection's own streams, works; enable channels on both listen() and connect()`,
    );
  }
}
