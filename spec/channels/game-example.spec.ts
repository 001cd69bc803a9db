/**
 * The README's channels example (a game: positions with a ttl, chat reliable, assets in bulk at a
 * low priority), run over a lossy virtual network in virtual time, and checked to be the README's
 * code word for word.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { VirtualAction, VirtualTimeScheduler, interval, take } from 'rxjs';
import { MessageExpiredError } from '../../lib/index';
import { VirtualNetwork, connect, listen } from '../../lib/testing/index';

function game(network: VirtualNetwork, level: Uint8Array) {
  const seen = { positions: [] as { at: number; sentAt: number }[], chat: [] as string[], level: 0, expired: 0 };
  const now = (): number => network.scheduler.now();
  // #region readme
  // Server: three channels per player, one concern each.
  listen(network, { host: '10.0.0.2', port: 7000, channels: true }).subscribe((player) => {
    const positions = player.channel(1, { ttl: 50 }); // a position older than 50 ms is worthless
    const chat = player.channel(2); // reliable and ordered, the default
    const assets = player.channel(3, { priority: -1 }); // bulk: never ahead of positions or chat
    positions.messages$.subscribe((p) => positions.send$.next(p)); // echo (a real server would broadcast)
    chat.messages$.subscribe((line) => chat.send$.next(line));
    assets.send$.next(level); // 1 MiB: positions and chat keep flowing beside it
  });

  // Client: a position every 20 ms, a chat line, and the level.
  connect(network, { from: '10.0.0.1', host: '10.0.0.2', port: 7000, channels: true }).subscribe((server) => {
    const positions = server.channel(1, { ttl: 50 });
    const chat = server.channel(2);
    const assets = server.channel(3, { priority: -1 });
    interval(20, network.scheduler)
      .pipe(take(100))
      .subscribe(() => {
        const position = Buffer.alloc(16); // x, y, z, heading
        position.writeDoubleBE(now(), 0); // the time it was sent, for this example's check
        positions.send(position).subscribe({ error: (e: MessageExpiredError) => void (seen.expired++, e) });
      });
    positions.messages$.subscribe((p) => seen.positions.push({ at: now(), sentAt: Buffer.from(p).readDoubleBE(0) }));
    chat.send$.next(Buffer.from('gl hf'));
    chat.send$.next(Buffer.from('brb'));
    chat.messages$.subscribe((line) => seen.chat.push(Buffer.from(line).toString()));
    assets.messages$.subscribe((m) => (seen.level = m.length));
  });
  // #endregion
  return seen;
}

describe('README channels example', () => {
  it('runs: positions arrive within their ttl or not at all, chat arrives in order, the level whole, under 5 % loss each way', () => {
    const scheduler = new VirtualTimeScheduler(VirtualAction, Infinity);
    const network = new VirtualNetwork({ scheduler, seed: 7, default: { loss: 0.05, delay: 10 } });
    const seen = game(network, Buffer.alloc(1 << 20, 9));
    scheduler.maxFrames = 5_000;
    scheduler.flush();
    expect(seen.chat).toEqual(['gl hf', 'brb']);
    expect(seen.level).toBe(1 << 20);
    expect(seen.positions.length).toBeGreaterThan(50);
    // Round trip: 50 ms each way (ttl) plus the 10 ms one-way delay, at most.
    for (const p of seen.positions) expect(p.at - p.sentAt).toBeLessThanOrEqual(2 * (50 + 10 + 1));
    expect(network.stats().total.dropped).toBeGreaterThan(0);
  });

  it('is the README’s code', () => {
    const source = readFileSync(__filename, 'utf8');
    const region = /\/\/ #region readme\n([\s\S]*?)\s*\/\/ #endregion/.exec(source)![1]!.replace(/^ {2}/gm, '');
    const readme = readFileSync(join(__dirname, '../../README.md'), 'utf8');
    expect(readme).toContain(region);
  });
});
