import { map, type OperatorFunction } from 'rxjs';
import type { DirectPacket } from '../../wire/packet';
import type { ConnectionCounters } from '../stats';

/** DIRECT datagrams (PROTOCOL.md §9): unreliable, unordered, handed on as they arrive, counted. */
export function receiveDirect(counters: ConnectionCounters): OperatorFunction<DirectPacket, Uint8Array> {
  return map((packet) => {
    counters.directReceived++;
    return packet.payload;
  });
}
