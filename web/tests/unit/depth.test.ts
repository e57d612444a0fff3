import { describe, expect, it } from 'vitest';
import { sampleDepth } from '../../src/depth';

describe('sampleDepth', () => {
  const bids: Array<[number, number]> = [[100, 1], [99, 3], [90, 4]];
  const asks: Array<[number, number]> = [[102, 2], [103, 5]];
  const d = sampleDepth(bids, asks, 20);

  it('is strictly increasing in price on both sides, bids below asks', () => {
    for (const side of [d.bids, d.asks]) for (let i = 1; i < side.length; i++) expect(side[i][0]).toBeGreaterThan(side[i - 1][0]);
    expect(d.bids.at(-1)![0]).toBe(100);
    expect(d.asks[0][0]).toBe(102);
  });
  it('samples an even grid, so a far level is drawn far away', () => {
    const gaps = d.bids.slice(1, -1).map((p, i) => p[0] - d.bids[i][0]);
    for (const g of gaps) expect(g).toBeCloseTo(gaps[0], 9);
    expect(d.bids[0][0]).toBeLessThanOrEqual(90);
  });
  it('is the cumulative size at that price or better', () => {
    const at = (side: Array<[number, number]>, p: number) => side.filter(([x]) => x <= p).at(-1)![1];
    expect(d.bids.find(([p]) => p > 99 && p < 100)![1]).toBe(1);
    expect(d.bids.find(([p]) => p > 90 && p < 99)![1]).toBe(3);
    expect(d.bids[0][1]).toBe(4);
    expect(at(d.asks, 102.5)).toBe(2);
    expect(d.asks.at(-1)![1]).toBe(5);
  });
  it('copes with one-sided and empty books', () => {
    expect(sampleDepth([], [])).toEqual({ bids: [], asks: [] });
    const one = sampleDepth([[50, 1]], [], 10);
    expect(one.asks).toEqual([]);
    expect(one.bids.at(-1)).toEqual([50, 1]);
  });
});
