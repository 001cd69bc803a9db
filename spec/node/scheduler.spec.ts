import { NEVER, TimeoutError, firstValueFrom, lastValueFrom, take, timeout, timer, toArray } from 'rxjs';
import { realTimeScheduler } from '../../lib/node';

jest.setTimeout(5000);

describe('realTimeScheduler', () => {
  it('has a monotonic sub-millisecond clock aligned with Date.now()', () => {
    const readings = Array.from({ length: 1000 }, () => realTimeScheduler.now());
    for (let i = 1; i < readings.length; i++) expect(readings[i]!).toBeGreaterThanOrEqual(readings[i - 1]!);
    // Whole milliseconds (Date.now()) would make every reading an integer.
    expect(readings.some((t) => !Number.isInteger(t))).toBe(true);
    expect(Math.abs(realTimeScheduler.now() - Date.now())).toBeLessThan(1000);
  });

  it('runs timer(delay, scheduler) after the delay', async () => {
    const start = realTimeScheduler.now();
    await firstValueFrom(timer(30, realTimeScheduler));
    // setTimeout runs on a whole-millisecond loop clock: allow 1 ms early.
    expect(realTimeScheduler.now() - start).toBeGreaterThanOrEqual(29);
  });

  it('runs periodic timer(delay, period, scheduler)', async () => {
    const start = realTimeScheduler.now();
    const ticks = await lastValueFrom(timer(5, 10, realTimeScheduler).pipe(take(3), toArray()));
    expect(ticks).toEqual([0, 1, 2]);
    expect(realTimeScheduler.now() - start).toBeGreaterThanOrEqual(24);
  });

  it('passes state to scheduled work and reschedules like asyncScheduler', async () => {
    const seen: number[] = [];
    await new Promise<void>((resolve) => {
      realTimeScheduler.schedule<number>(
        function (state) {
          seen.push(state);
          if (state < 3) this.schedule(state + 1, 1);
          else resolve();
        },
        1,
        1,
      );
    });
    expect(seen).toEqual([1, 2, 3]);
  });

  it('cancels scheduled work on unsubscribe', async () => {
    let ran = false;
    realTimeScheduler.schedule(() => (ran = true), 5).unsubscribe();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(ran).toBe(false);
  });

  it('drives timeout({ first, scheduler })', async () => {
    const start = realTimeScheduler.now();
    await expect(firstValueFrom(NEVER.pipe(timeout({ first: 30, scheduler: realTimeScheduler })))).rejects.toBeInstanceOf(
      TimeoutError,
    );
    expect(realTimeScheduler.now() - start).toBeGreaterThanOrEqual(29);
  });

  it('drives timeout({ each, with, scheduler }) without firing when values arrive in time', async () => {
    const values = await lastValueFrom(
      timer(0, 5, realTimeScheduler).pipe(
        take(4),
        timeout({ each: 200, scheduler: realTimeScheduler, with: () => timer(0, realTimeScheduler) }),
        toArray(),
      ),
    );
    expect(values).toEqual([0, 1, 2, 3]);
  });

  it('supports a Date due time', async () => {
    const start = Date.now();
    await firstValueFrom(timer(new Date(start + 30), realTimeScheduler));
    expect(Date.now() - start).toBeGreaterThanOrEqual(25);
  });
});
