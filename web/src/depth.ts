/**
 * The depth chart's curve, for drawing only (numbers): cumulative size against price, sampled
 * on an even price grid so the horizontal axis (lightweight-charts spaces points evenly) is
 * linear in price, and a level far from the others is drawn far away.
 */

export type Point = [price: number, size: number];

/**
 * `bids` and `asks` are cumulative depth, best level first ([price, cumulative size]).
 * Returns the two curves, ascending in price, over `mid ± range`, where the range reaches the
 * farther of the two sides' deepest shown levels; `points` samples per side.
 */
export function sampleDepth(bids: Point[], asks: Point[], points = 120): { bids: Point[]; asks: Point[] } {
  if (bids.length === 0 && asks.length === 0) return { bids: [], asks: [] };
  const bestBid = bids.length ? bids[0][0] : null;
  const bestAsk = asks.length ? asks[0][0] : null;
  const mid = bestBid !== null && bestAsk !== null ? (bestBid + bestAsk) / 2 : (bestBid ?? bestAsk)!;
  const reach = Math.max(
    bids.length ? mid - bids[bids.length - 1][0] : 0,
    asks.length ? asks[asks.length - 1][0] - mid : 0,
  );
  const range = reach > 0 ? reach * 1.02 : Math.max(Math.abs(mid) * 0.001, 1e-9);
  const step = range / points;
  // Bids: from the far end up to the best bid; at price p, everything bid at p or higher.
  const outBids: Point[] = [];
  if (bestBid !== null) {
    let j = bids.length - 1;
    for (let i = points; i >= 0; i--) {
      const p = mid - i * step;
      if (p > bestBid) break;
      while (j > 0 && bids[j][0] < p) j--;
      const size = bids[j][0] >= p ? bids[j][1] : 0;
      outBids.push([p, size]);
    }
    outBids.push([bestBid, bids[0][1]]);
  }
  // Asks: from the best ask outwards; at price p, everything offered at p or lower.
  const outAsks: Point[] = [];
  if (bestAsk !== null) {
    outAsks.push([bestAsk, asks[0][1]]);
    let j = 0;
    for (let i = 0; i <= points; i++) {
      const p = mid + i * step;
      if (p <= bestAsk) continue;
      while (j < asks.length - 1 && asks[j + 1][0] <= p) j++;
      outAsks.push([p, asks[j][1]]);
    }
  }
  return { bids: dedupe(outBids), asks: dedupe(outAsks) };
}

/** Strictly increasing prices (the chart's requirement). */
function dedupe(points: Point[]): Point[] {
  const out: Point[] = [];
  for (const pt of points) {
    if (out.length && pt[0] <= out[out.length - 1][0]) {
      out[out.length - 1] = [out[out.length - 1][0], Math.max(out[out.length - 1][1], pt[1])];
      continue;
    }
    out.push(pt);
  }
  return out;
}
