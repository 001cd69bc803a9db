'use strict';
/**
 * The soak's impaired network: wraps a SocketFactory so that every datagram a process SENDS is
 * dropped with probability `loss`, or held back a random 1..maxDelayMs ms with probability
 * `reorder` (later datagrams overtake it). Each of the two soak processes wraps its own real UDP
 * sockets, so the traffic between them is impaired in both directions. Seeded (mulberry32).
 * Real timers: this sits above the protocol core, like the network itself.
 */
const { map } = require('rxjs');

const { mulberry32 } = require('../dist/testing/random.js'); // the testing kit's seeded PRNG

/**
 * @param {import('../dist/core/transport').SocketFactory} factory
 * @param {{ loss: number, reorder: number, maxDelayMs: number, seed: number }} options
 * @param {{ sent: number, dropped: number, delayed: number }} counters updated as datagrams go out
 */
function impairedFactory(factory, options, counters) {
  const random = mulberry32(options.seed);
  return (bind) =>
    factory(bind).pipe(
      map((socket) => {
        return {
          datagrams$: socket.datagrams$,
          address: () => socket.address(),
          send: (data, port, address, onError) => {
            counters.sent++;
            const u = random();
            if (u < options.loss) {
              counters.dropped++;
              return;
            }
            if (u < options.loss + options.reorder) {
              counters.delayed++;
              const copy = Buffer.from(data);
              setTimeout(() => socket.send(copy, port, address, onError), 1 + Math.floor(random() * options.maxDelayMs));
              return;
            }
            socket.send(data, port, address, onError);
          },
        };
      }),
    );
}

module.exports = { impairedFactory, mulberry32 };
