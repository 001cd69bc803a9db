/**
 * Glue between the raw peer and the CLI processes: starts `rx-rudp echo` / `rx-rudp connect`
 * (through the CLI specs' process wrapper; dist/ is built only when missing or older than lib/,
 * as `npm test` has just built it), kills every child after each test, performs handshakes, and
 * checks after each test that everything the implementation sent was a valid packet (§1).
 */
import { Cli } from '../cli/cli-process';
import { ensureBuilt } from '../hardening/helpers';
import { closeAllPeers, HOST, openPeers, Peer, PeerConnection, show, type PeerConnectionOptions, type Received } from './peer';
import * as w from './wire';

export { Cli };

let nextId = 0x1000_0000 + Math.floor(Math.random() * 0x1000_0000);
/** A fresh non-zero connection id. */
export const newId = (): number => (nextId = (nextId + 0x9e37) >>> 0 || 1);
let nonce = 0x5eed;
export const newNonce = (): number => (nonce = (nonce * 48271) % 0x7fffffff);

/** The CLI processes of the current test, killed after it. */
const children = new Set<Cli>();
function started(cli: Cli): Cli {
  children.add(cli);
  void cli.exited.then(() => children.delete(cli));
  return cli;
}

/** Builds dist/ if stale, kills children after each test, closes peer sockets, checks §1 on everything received. */
export function useConformance(): void {
  beforeAll(() => ensureBuilt(), 120_000);
  afterEach(async () => {
    const left = [...children];
    for (const cli of left) cli.child.kill('SIGKILL');
    await Promise.all(left.map((cli) => cli.exited));
    const peers = openPeers();
    await closeAllPeers();
    // Every datagram the implementation sent in the test must be a valid version-1 packet.
    const invalid = peers.flatMap((peer) => peer.log.filter((r) => r.packet.problem !== undefined).map((r) => show(r.packet, r.bytes.length)));
    expect(invalid).toEqual([]);
  });
}

/** Starts `rx-rudp echo` on a free loopback port. */
export async function startEcho(...flags: string[]): Promise<{ cli: Cli; port: number }> {
  const cli = started(new Cli(['echo', '--host', HOST, '--port', '0', ...flags]));
  const match = await cli.waitFor('stdout', /^listening 127\.0\.0\.1:(\d+)\n/, 10_000);
  return { cli, port: Number(match[1]) };
}

export interface Handshake {
  readonly conn: PeerConnection;
  readonly ack: Received;
  readonly connect: Buffer;
}

/**
 * Our peer as a starter: CONNECT (64 bytes, zero padding) to the listener, waits for CONNECT_ACK.
 * `greet` sends a DATA_ACK of our empty receive state at once, as §3 recommends; without it the
 * peer is a version-1 starter that stays quiet until it has something to say.
 */
export async function handshake(
  peer: Peer,
  port: number,
  options: PeerConnectionOptions & { greet?: boolean; id?: number; connectSize?: number } = {},
): Promise<Handshake> {
  const id = options.id ?? newId();
  const n = newNonce();
  const connect = w.connect(id, { nonce: n, maxDatagramSize: options.maxDatagramSize ?? 1200, receiveWindow: options.receiveWindow ?? 64, size: options.connectSize ?? 64 });
  const conn = new PeerConnection(peer, id, port, options);
  const from = peer.log.length;
  peer.send(connect, port);
  const ack = await conn.next((p) => p.type === w.T.CONNECT_ACK && p.nonce === n, 2_000, `CONNECT_ACK for ${id}`, from);
  if (options.greet === true) conn.send(w.dataAck(id, 0, conn.receiveWindow));
  return { conn, ack, connect };
}

/** Starts `rx-rudp connect` towards our peer, which plays the listener. */
export function startConnect(peer: Peer, ...flags: string[]): Cli {
  return started(new Cli(['connect', HOST, String(peer.port), ...flags]));
}

/** Waits for the connect CLI's CONNECT at our listening peer; answers it unless told not to. */
export async function acceptConnect(
  peer: Peer,
  options: PeerConnectionOptions & { answer?: boolean; ackFields?: { maxDatagramSize?: number; receiveWindow?: number } } = {},
): Promise<{ conn: PeerConnection; connect: Received }> {
  const connect = await peer.next((r) => r.packet.type === w.T.CONNECT, 10_000, 'CONNECT from the connect CLI');
  const p = connect.packet as w.ConnectP;
  const conn = new PeerConnection(peer, p.id, connect.port, options);
  if (options.answer !== false) {
    conn.send(w.connectAck(p.id, { nonce: p.nonce, maxDatagramSize: options.ackFields?.maxDatagramSize ?? conn.maxDatagramSize, receiveWindow: options.ackFields?.receiveWindow ?? conn.receiveWindow }));
  }
  return { conn, connect };
}
