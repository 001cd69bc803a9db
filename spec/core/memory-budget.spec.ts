/**
 * The listener-wide memory budget and a receiver's claims on it, driven directly: who may take
 * the reserve, what a message claims and gives back, what a closed connection returns, and what
 * is asked for again once there is room.
 */
import { MemoryAccount, MemoryBudget } from '../../lib/core/memory-budget';
import { DataOutcome, Receiver } from '../../lib/core/receiver';
import { PacketType, type DataPacket } from '../../lib/wire/packet';

const PAYLOAD = 100;

const data = (seq: number, batch: number, index: number, count: number, size = PAYLOAD): DataPacket => ({
  type: PacketType.Data,
  connectionId: 1,
  seq,
  batch,
  index,
  count,
  payload: Buffer.alloc(size, seq),
});

describe('MemoryBudget', () => {
  test('only an in-order claim may take the reserve', () => {
    const budget = new MemoryBudget(1000, 400);
    expect(budget.claim(600, false)).toBe(true);
    expect(budget.claim(1, false)).toBe(false);
    expect(budget.claim(400, true)).toBe(true);
    expect(budget.claim(1, true)).toBe(false);
    expect(budget.used).toBe(1000);
    expect(budget.sharedFree).toBe(-400);
  });

  test('a release wakes each waiter once', () => {
    const budget = new MemoryBudget(1000, 0);
    const woken: string[] = [];
    const a = (): void => void woken.push('a');
    budget.waitForRoom(a);
    budget.waitForRoom(a);
    budget.waitForRoom(() => void woken.push('b'));
    budget.claim(10, false);
    budget.release(10);
    budget.release(0);
    expect(woken).toEqual(['a', 'b']);
  });

  test('a closed account gives back exactly what it held, once', () => {
    const budget = new MemoryBudget(1000, 0);
    const other = new MemoryAccount(budget);
    const account = new MemoryAccount(budget);
    other.claim(100, false);
    account.claim(300, false);
    account.release(50);
    account.close();
    expect(budget.used).toBe(100);
    account.release(250); // a held message consumed after the close
    account.close();
    expect(budget.used).toBe(100);
    expect(account.claim(1, false)).toBe(false);
  });
});

describe('Receiver claims', () => {
  const setup = (limit = 100_000, reserve = 0) => {
    const budget = new MemoryBudget(limit, reserve);
    const delivered: number[] = [];
    const receiver = new Receiver({ receiveWindow: 16, maxMessageSize: 10 * PAYLOAD, payloadSize: PAYLOAD, memory: new MemoryAccount(budget) }, (m) => void delivered.push(m.length));
    return { budget, receiver, delivered };
  };

  test('a message of larger packets (path-MTU probing raised them) claims by the size of its own first packet', () => {
    const { budget, receiver, delivered } = setup();
    expect(receiver.onData(data(0, 0, 0, 3, 4 * PAYLOAD), 0)).toBe(DataOutcome.New);
    expect(budget.used).toBe(12 * PAYLOAD);
    receiver.onData(data(2, 0, 2, 3, 10), 0);
    receiver.onData(data(1, 0, 1, 3, 4 * PAYLOAD), 0);
    expect(delivered).toEqual([8 * PAYLOAD + 10]);
    expect(budget.used).toBe(8 * PAYLOAD + 10);
  });

  test.each([
    ['in order', [0, 1]],
    ['after its first, out of order', [0, 2]],
  ])('a packet longer than the first of its batch (%s) is a protocol violation: its claim would not cover it', (_name, seqs) => {
    const { budget, receiver } = setup();
    receiver.onData(data(seqs[0]!, 0, 0, 3), 0);
    expect(receiver.onData(data(seqs[1]!, 0, seqs[1]!, 3, PAYLOAD + 1), 0)).toBe(DataOutcome.Violation);
    expect(receiver.violation?.closeReason).toBe(2);
    expect(budget.used).toBe(3 * PAYLOAD);
  });

  test("a message's first packet claims it whole; its later packets claim nothing; completion keeps only its size", () => {
    const { budget, receiver, delivered } = setup();
    expect(receiver.onData(data(0, 0, 0, 3), 0)).toBe(DataOutcome.New);
    expect(budget.used).toBe(3 * PAYLOAD);
    receiver.onData(data(1, 0, 1, 3), 0);
    expect(budget.used).toBe(3 * PAYLOAD);
    receiver.onData(data(2, 0, 2, 3, 10), 0);
    expect(delivered).toEqual([2 * PAYLOAD + 10]);
    expect(budget.used).toBe(2 * PAYLOAD + 10);
    receiver.released(2 * PAYLOAD + 10);
    expect(budget.used).toBe(0);
  });

  test('packets stored before their first packet count towards its claim', () => {
    const { budget, receiver } = setup();
    receiver.onData(data(2, 0, 2, 3, 10), 0);
    expect(budget.used).toBe(10);
    receiver.onData(data(0, 0, 0, 3), 0);
    expect(budget.used).toBe(3 * PAYLOAD); // 10 stored + 290 claimed for the rest
    receiver.onData(data(1, 0, 1, 3), 0);
    expect(budget.used).toBe(2 * PAYLOAD + 10);
  });

  test('without room a packet is dropped, the window narrows, and the gap up to it is asked for again', () => {
    const { budget, receiver } = setup(1000, 500);
    const hog = new MemoryAccount(budget);
    hog.claim(450, false);
    expect(receiver.window).toBe(1); // 50 bytes free: not one payload, but the in-order packet may use the reserve
    expect(receiver.onData(data(3, 3, 0, 1), 0)).toBe(DataOutcome.OutsideWindow);
    expect(receiver.onData(data(0, 0, 0, 1), 0)).toBe(DataOutcome.New); // from the reserve
    expect(hog.claim(400, true)).toBe(true); // the reserve, all but 50 bytes
    expect(receiver.onData(data(1, 1, 0, 1), 0)).toBe(DataOutcome.NoMemory);
    expect(receiver.takeTurnedAway()).toEqual([{ start: 1, end: 3 }]);
    expect(receiver.takeTurnedAway()).toEqual([]);
  });

  test('one receiver cannot claim more than two whole messages and two windows, whatever its peer claims', () => {
    const { budget, receiver } = setup(10_000_000);
    // First packets of "messages" of 10 payloads each, out of order: each claims a whole message.
    let accepted = 0;
    for (let seq = 1; seq < 16; seq++) if (receiver.onData(data(seq, seq, 0, 10), 0) === DataOutcome.New) accepted++;
    expect(budget.used).toBeLessThanOrEqual(2 * (10 * PAYLOAD + PAYLOAD) + 2 * 16 * PAYLOAD);
    expect(accepted).toBeLessThan(15);
  });
});
