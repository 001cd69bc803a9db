import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { VirtualAction, VirtualTimeScheduler, map, type Observable } from 'rxjs';
import { connectWithTestHooks } from '../../lib/api/connect';
import { listenWithTestHooks } from '../../lib/api/listen';
import type { Connection } from '../../lib/index';
import type { DatagramSocket, SocketFactory } from '../../lib/core/transport';
import { decode } from '../../lib/wire/codec';
import { isDecodeError, PacketType } from '../../lib/wire/packet';
import { seqAfter, seqDiff } from '../../lib/wire/serial';
import { VirtualNetwork, type LinkImpairment, type TrafficEvent } from '../../lib/testing/index';

/**
 * Wraps a socket factory to check, at the sender, PROTOCOL.md §5's window rule: a DATA packet may
 * be sent only if (seq - cumulative) mod 2^32 < window, taking both from the DATA_ACK with the
 * highest cumulative received so far (or seq = cumulative as a zero-window probe).
 */
function windowChecked(factory: SocketFactory, initialSeq: number, peerWindow: number, violations: string[]): SocketFactory {
  return (options) =>
    factory(options).pipe(
      map((socket): DatagramSocket => {
        let cumulative = initialSeq;
        let window = peerWindow;
        const datagrams$: Observable<any> = socket.datagrams$.pipe(
          map((d) => {
            const p = decode(d.data);
            if (!isDecodeError(p) && p.type === PacketType.DataAck && !seqAfter(cumulative, p.cumulative)) {
              cumulative = p.cumulative;
              window = p.window;
            }
            return d;
          }),
        );
        return {
          datagrams$,
          address: () => socket.address(),
          send: (data, port, address, onError) => {
            const p = decode(data);
            if (!isDecodeError(p) && p.type === PacketType.Data) {
              const offset = seqDiff(p.seq, cumulative);
              if (offset >= window && offset !== 0) violations.push(`seq ${p.seq} sent with cumulative ${cumulative} window ${window}`);
            }
            socket.send(data, port, address, onError);
          },
        };
      }),
    );
}

const digest = (m: Uint8Array): string => createHash('sha256').update(m).digest('hex');

/** Messages whose bytes say where they belong, so a swap or a mix-up cannot go unseen. */
function makeMessages(sizes: number[], tag: number): Buffer[] {
  return sizes.map((size, i) => {
    const m = Buffer.alloc(size);
    for (let j = 0; j < size; j++) m[j] = (j * 31 + i * 7 + tag) & 0xff;
    return m;
  });
}

/**
 * Rates drawn uniformly in steps of 0.1 %: fc.double favours tiny values (most draws would be
 * below 0.1 %, a network that hardly misbehaves).
 */
const rate = (max: number) => fc.integer({ min: 0, max: max * 1000 }).map((n) => n / 1000);
const impairment = fc.record({
  loss: rate(0.3),
  duplicate: rate(0.1),
  reorder: rate(0.2),
  delay: fc.integer({ min: 0, max: 40 }),
  jitter: fc.integer({ min: 0, max: 20 }),
});

/** What one direction of the virtual network really did to the datagrams, from its trace. */
interface Misbehaviour {
  sent: number;
  lost: number;
  duplicated: number;
  /** Held back by the reorder delay (beyond delay + jitter). */
  heldBack: number;
  /** Arrived before a datagram sent earlier on the same direction. */
  overtook: number;
}

function watch(network: VirtualNetwork, from: string, imp: LinkImpairment): Misbehaviour {
  const m: Misbehaviour = { sent: 0, lost: 0, duplicated: 0, heldBack: 0, overtook: 0 };
  let latest = -Infinity;
  network.traffic$.subscribe((e: TrafficEvent) => {
    if (e.from.address !== from) return;
    m.sent++;
    if (e.fate === 'lost') return m.lost++, undefined;
    if (e.fate === 'duplicated') m.duplicated++;
    const arrival = e.arrivals[0]!;
    if (arrival - e.time > (imp.delay ?? 0) + (imp.jitter ?? 0)) m.heldBack++;
    if (arrival < latest) m.overtook++;
    latest = Math.max(latest, ...e.arrivals);
  });
  return m;
}

/**
 * The network must have misbehaved as drawn: where a rate × the datagrams sent expects 25 or more
 * events, at least one happened (the chance of none is below e^-25).
 */
function expectMisbehaved(m: Misbehaviour, imp: LinkImpairment, where: string): void {
  const checks: [string, number, number][] = [
    ['lost', imp.loss ?? 0, m.lost],
    ['duplicated', imp.duplicate ?? 0, m.duplicated],
    ['held back for reordering', imp.reorder ?? 0, m.heldBack],
  ];
  for (const [what, p, seen] of checks) {
    if (p >= 0.01 && p * m.sent >= 25 && seen === 0) throw new Error(`${where}: rate ${p} over ${m.sent} datagrams, none ${what}`);
  }
}

/** Over every run of the property: what the networks did in total. */
const overall = { runs: 0, lost: 0, duplicated: 0, heldBack: 0, overtook: 0, lossBothWays: 0 };

describe('delivery over an impaired virtual network (property)', () => {
  it('every message arrives exactly once, whole, in order, both directions at once, within the window', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 200_000 }), { maxLength: 6 }),
        fc.array(fc.integer({ min: 0, max: 200_000 }), { maxLength: 6 }),
        impairment,
        impairment,
        fc.integer({ min: 1, max: 2 ** 31 }),
        fc.constantFrom(0, 2 ** 32 - 40),
        fc.integer({ min: 4, max: 256 }),
        (sizesA, sizesB, ab, ba, seed, initialSeq, receiveWindow) => {
          const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
          const network = new VirtualNetwork({ scheduler, seed });
          network.setLink('10.0.0.1', '10.0.0.2', ab as LinkImpairment);
          network.setLink('10.0.0.2', '10.0.0.1', ba as LinkImpairment);
          const seenAB = watch(network, '10.0.0.1', ab);
          const seenBA = watch(network, '10.0.0.2', ba);
          const fromA = makeMessages(sizesA, 1);
          const fromB = makeMessages(sizesB, 2);
          const violations: string[] = [];
          // connectTimeout also bounds the listener's half-open expiry: a starter with nothing to send
          // proves itself only by its greeting and its pings, which this link may all lose. Likewise
          // liveness: at 30 % loss each way a PING and its answer both get through only half the
          // time, so 5 unanswered PINGs in a row (the default) happen once in ~40 quiet stretches,
          // and the peer is rightly declared dead; this property is about delivery, so it allows 20.
          const options = { scheduler, receiveWindow, pingInterval: 5_000, pingPacketCount: 20, deliveryTimeout: 200, connectTimeout: 60_000 };
          const hooks = { initialSeq, initialBatch: initialSeq === 0 ? 0 : 2 ** 32 - 2 };
          const receivedByA: string[] = [];
          const receivedByB: string[] = [];
          const errors: unknown[] = [];
          let a: Connection | undefined;
          let b: Connection | undefined;
          // Both ends close once everything arrived (the application's agreement): a lone CLOSE may be
          // lost, and a starter does not linger to repeat it, so one-sided closing is not what is under test here.
          const closeWhenDone = (): void => {
            if (receivedByA.length === fromB.length && receivedByB.length === fromA.length) {
              a?.close();
              b?.close();
            }
          };
          const attach = (c: Connection, into: string[], outgoing: Buffer[]): void => {
            c.messages$.subscribe({ next: (m) => { into.push(digest(m)); closeWhenDone(); }, error: (e) => errors.push(e) });
            for (const m of outgoing) c.send$.next(m);
          };
          const listener = listenWithTestHooks({ ...options, host: '10.0.0.2', port: 5000, socketFactory: windowChecked(network.socketFactory('10.0.0.2'), initialSeq, receiveWindow, violations) }, hooks).subscribe((c) => {
            b = c;
            attach(c, receivedByB, fromB);
          });
          const starter = connectWithTestHooks({ ...options, host: '10.0.0.2', port: 5000, socketFactory: windowChecked(network.socketFactory('10.0.0.1'), initialSeq, receiveWindow, violations) }, hooks).subscribe({
            next: (c) => {
              a = c;
              attach(c, receivedByA, fromA);
              closeWhenDone();
            },
            error: (e) => errors.push(e),
          });
          scheduler.maxFrames = 600_000; // ten virtual minutes: far beyond what any run needs
          scheduler.flush();
          listener.unsubscribe();
          starter.unsubscribe();
          scheduler.flush();
          expect(errors).toEqual([]);
          expect(receivedByB).toEqual(fromA.map(digest));
          expect(receivedByA).toEqual(fromB.map(digest));
          expect(violations).toEqual([]);
          expect(b?.stats.messagesReceived).toBe(fromA.length);
          // nothing left scheduled: every timer of both connections was released
          expect(scheduler.actions.length).toBe(0);
          expectMisbehaved(seenAB, ab, 'A to B');
          expectMisbehaved(seenBA, ba, 'B to A');
          overall.runs++;
          for (const m of [seenAB, seenBA]) {
            overall.lost += m.lost;
            overall.duplicated += m.duplicated;
            overall.heldBack += m.heldBack;
            overall.overtook += m.overtook;
          }
          if (seenAB.lost > 0 && seenBA.lost > 0) overall.lossBothWays++;
        },
      ),
      { numRuns: 100 },
    );
    // The runs really were impaired, both ways at once in most of them (about 80 of 100 lose
    // datagrams both ways; runs with few messages carry only a handful of datagrams).
    expect(overall.runs).toBe(100);
    expect(overall.lost).toBeGreaterThan(0);
    expect(overall.duplicated).toBeGreaterThan(0);
    expect(overall.heldBack).toBeGreaterThan(0);
    expect(overall.overtook).toBeGreaterThan(0);
    expect(overall.lossBothWays).toBeGreaterThanOrEqual(50);
  }, 120_000);
});
