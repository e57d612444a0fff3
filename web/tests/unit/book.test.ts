import { describe, expect, it } from 'vitest';
import { BookError, OrderBook } from '../../src/book';

const snapshot = () => ({
  u: 10,
  bids: [['60000.00', '0.5000'], ['59990.00', '1.0000']] as [string, string][],
  asks: [['60010.00', '0.2500'], ['60020.00', '0.7500']] as [string, string][],
});

const fresh = () => {
  const b = new OrderBook(2, 4);
  b.applySnapshot(snapshot());
  return b;
};

describe('snapshot', () => {
  it('orders bids down and asks up, with cumulative totals', () => {
    const b = fresh();
    expect(b.levels('bids')).toEqual([
      { price: '60000.00', quantity: '0.5000', total: '0.5000' },
      { price: '59990.00', quantity: '1.0000', total: '1.5000' },
    ]);
    expect(b.levels('asks').map((l) => l.price)).toEqual(['60010.00', '60020.00']);
    expect(b.bestBid()).toBe('60000.00');
    expect(b.bestAsk()).toBe('60010.00');
    expect(b.spread()).toBe('10.00');
    expect(b.mid()).toBe('60005.000');
  });
  it('replaces everything before it', () => {
    const b = fresh();
    b.applySnapshot({ u: 50, bids: [['100.00', '1.0000']], asks: [] });
    expect(b.levels('bids')).toHaveLength(1);
    expect(b.levels('asks')).toHaveLength(0);
    expect(b.u).toBe(50);
  });
});

describe('deltas', () => {
  it('set a level to its new total, add new levels in order', () => {
    const b = fresh();
    expect(b.applyDelta({ u: 11, bids: [['59995.00', '0.1000'], ['60000.00', '0.7500']], asks: [] })).toBe('applied');
    expect(b.levels('bids').map((l) => [l.price, l.quantity, l.total])).toEqual([
      ['60000.00', '0.7500', '0.7500'],
      ['59995.00', '0.1000', '0.8500'],
      ['59990.00', '1.0000', '1.8500'],
    ]);
    expect(b.u).toBe(11);
  });
  it('remove a level whose total is "0" (in any spelling of zero)', () => {
    const b = fresh();
    b.applyDelta({ u: 11, bids: [['60000.00', '0']], asks: [['60010.00', '0.0000']] });
    expect(b.bestBid()).toBe('59990.00');
    expect(b.bestAsk()).toBe('60020.00');
    expect(b.depthCount('bids')).toBe(1);
    // Removing a level that is not there is harmless.
    expect(b.applyDelta({ u: 12, bids: [['1.00', '0']], asks: [] })).toBe('applied');
    expect(b.depthCount('bids')).toBe(1);
  });
  it('detect a gap in u, and refuse deltas until the next snapshot', () => {
    const b = fresh();
    expect(b.applyDelta({ u: 11, bids: [], asks: [] })).toBe('applied');
    expect(b.applyDelta({ u: 13, bids: [['1.00', '1.0000']], asks: [] })).toBe('gap');
    expect(b.ready).toBe(false);
    expect(b.applyDelta({ u: 14, bids: [], asks: [] })).toBe('awaiting-snapshot');
    b.applySnapshot({ ...snapshot(), u: 20 });
    expect(b.ready).toBe(true);
    expect(b.applyDelta({ u: 21, bids: [], asks: [] })).toBe('applied');
  });
  it('ignore deltas at or before the snapshot (in flight when it was taken)', () => {
    const b = fresh();
    const before = b.version;
    expect(b.applyDelta({ u: 9, bids: [['60000.00', '0']], asks: [] })).toBe('stale');
    expect(b.applyDelta({ u: 10, bids: [['60000.00', '0']], asks: [] })).toBe('stale');
    expect(b.bestBid()).toBe('60000.00');
    expect(b.version).toBe(before);
    expect(b.applyDelta({ u: 11, bids: [], asks: [] })).toBe('applied');
  });
  it('wait for a first snapshot', () => {
    const b = new OrderBook(2, 4);
    expect(b.applyDelta({ u: 1, bids: [['1.00', '1.0000']], asks: [] })).toBe('awaiting-snapshot');
    expect(b.levels('bids')).toEqual([]);
  });
  it('keep sizes exact over many updates', () => {
    const b = new OrderBook(2, 8);
    b.applySnapshot({ u: 0, bids: [], asks: [] });
    for (let i = 1; i <= 1000; i++) b.applyDelta({ u: i, bids: [[`${100 + (i % 10)}.00`, '0.1']], asks: [] });
    expect(b.levels('bids').at(-1)!.total).toBe('1.00000000'); // ten levels of 0.1: no 0.9999999
  });
  it('refuse prices finer than the tick', () => {
    const b = new OrderBook(2, 4);
    expect(() => b.applySnapshot({ u: 0, bids: [['1.001', '1']], asks: [] })).toThrow(BookError);
  });
});

describe('depth series (for drawing)', () => {
  it('is best level first with cumulative sizes from the inside out', () => {
    const d = fresh().depthSeries();
    expect(d.bids).toEqual([[60000, 0.5], [59990, 1.5]]);
    expect(d.asks).toEqual([[60010, 0.25], [60020, 1]]);
  });
});
