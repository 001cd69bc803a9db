/** Counters a connection keeps; `Connection.stats` returns a snapshot with the live window figures added. */
export interface ConnectionCounters {
  packetsSent: number;
  packetsReceived: number;
  bytesSent: number;
  bytesReceived: number;
  dataPacketsSent: number;
  dataPacketsReceived: number;
  /** DATA packets sent again (after a timeout or a REPEAT). */
  retransmissions: number;
  /** Extra copies of small DATA packets sent at once while the sender had nothing else to send. */
  redundantSends: number;
  /** Resends caused by the peer's REPEAT requests. */
  repeatsAnswered: number;
  /** REPEAT packets we sent for gaps in the peer's sequence. */
  repeatsSent: number;
  /** DATA packets received twice (re-acknowledged, not re-delivered). */
  duplicatesReceived: number;
  /** Datagrams dropped: invalid, beyond the receive window, or from the wrong peer. */
  droppedDatagrams: number;
  /** DATA packets dropped (also in droppedDatagrams) because the listener's `maxMemory` had no room: the peer resends them. */
  droppedForMemory: number;
  messagesSent: number;
  messagesReceived: number;
  acksSent: number;
  pingsSent: number;
  directSent: number;
  directReceived: number;
  /** Messages pushed into `send$` after the connection closed: dropped (and warned about once). */
  sendsAfterClose: number;
  /** Messages with a `ttl` that were not acknowledged in time: abandoned, their `send()` failed with MessageExpiredError. */
  messagesExpired: number;
}

export interface ConnectionStats extends ConnectionCounters {
  /** Smoothed round-trip time in ms (undefined before the first sample). */
  rtt: number | undefined;
  /** Current retransmission timeout in ms. */
  rto: number;
  /** Congestion window, in bytes on the wire. */
  congestionWindow: number;
  /** The peer's last advertised receive window, in packets. */
  peerWindow: number;
  /** DATA packets sent and not yet acknowledged. */
  inFlight: number;
  /** Wire bytes of those packets (what the congestion window limits). */
  inFlightBytes: number;
  /** Bytes of messages queued or in flight, not yet acknowledged. */
  bufferedBytes: number;
  /** Size of the DATA packets sent now (bytes before any sealing): min(own, peer's maxDatagramSize), or what path-MTU probing raised it to. */
  datagramSize: number;
}

export function emptyCounters(): ConnectionCounters {
  return {
    packetsSent: 0,
    packetsReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    dataPacketsSent: 0,
    dataPacketsReceived: 0,
    retransmissions: 0,
    repeatsAnswered: 0,
    redundantSends: 0,
    repeatsSent: 0,
    duplicatesReceived: 0,
    droppedDatagrams: 0,
    droppedForMemory: 0,
    messagesSent: 0,
    messagesReceived: 0,
    acksSent: 0,
    pingsSent: 0,
    directSent: 0,
    directReceived: 0,
    sendsAfterClose: 0,
    messagesExpired: 0,
  };
}
