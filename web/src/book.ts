/**
 * The local order book: a snapshot, then deltas carrying each changed level's new total.
 *
 * The venue numbers a symbol's book updates with a counter `u`: the first delta after a
 * snapshot has `u = snapshot.u + 1` and each next one the previous plus one. A delta whose
 * `u` is not the expected one means frames were missed: the book is no longer trustworthy
 * and the client resubscribes for a fresh snapshot (`applyDelta` returns `"gap"`; deltas are
 * refused until that snapshot arrives). Deltas at or below the current `u` are left-overs
 * from before a snapshot and are ignored (`"stale"`). A level whose new total is "0" is gone.
 *
 * Prices and sizes are kept as BigInt units of the instrument's tick and lot decimals.
 */

import { fromUnits, pow10, toUnits } from './decimal';

export type Levels = ReadonlyArray<readonly [string, string]>;

export interface BookFrame {
  u: number;
  bids: Levels;
  asks: Levels;
  seq?: number;
}

export type DeltaResult = 'applied' | 'stale' | 'gap' | 'awaiting-snapshot';

export interface Level {
  price: string;
  quantity: string;
  /** Cumulative size from the best price to this level, inclusive. */
  total: string;
}

function insertSorted(list: bigint[], value: bigint, descending: boolean): void {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const before = descending ? list[mid] > value : list[mid] < value;
    if (before) lo = mid + 1;
    else hi = mid;
  }
  list.splice(lo, 0, value);
}

function removeSorted(list: bigint[], value: bigint, descending: boolean): void {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const before = descending ? list[mid] > value : list[mid] < value;
    if (before) lo = mid + 1;
    else hi = mid;
  }
  if (list[lo] === value) list.splice(lo, 1);
}

class Side {
  readonly sizes = new Map<bigint, bigint>();
  readonly prices: bigint[] = [];
  constructor(readonly descending: boolean) {}

  clear(): void {
    this.sizes.clear();
    this.prices.length = 0;
  }

  set(price: bigint, size: bigint): void {
    const had = this.sizes.has(price);
    if (size === 0n) {
      if (had) {
        this.sizes.delete(price);
        removeSorted(this.prices, price, this.descending);
      }
      return;
    }
    this.sizes.set(price, size);
    if (!had) insertSorted(this.prices, price, this.descending);
  }
}

export class BookError extends Error {}

export class OrderBook {
  /** The update counter of the last applied frame; -1 before the first snapshot. */
  u = -1;
  seq = 0;
  /** Bumped on every applied change: renderers compare it to skip redundant work. */
  version = 0;
  private readonly bids = new Side(true);
  private readonly asks = new Side(false);

  constructor(
    readonly priceDecimals: number,
    readonly sizeDecimals: number,
  ) {}

  get ready(): boolean {
    return this.u >= 0;
  }

  /** Forget everything until the next snapshot (after a gap or a reconnect). */
  invalidate(): void {
    this.u = -1;
  }

  applySnapshot(frame: BookFrame): void {
    this.bids.clear();
    this.asks.clear();
    this.apply(frame);
    this.u = frame.u;
    this.seq = frame.seq ?? this.seq;
    this.version++;
  }

  applyDelta(frame: BookFrame): DeltaResult {
    if (this.u < 0) return 'awaiting-snapshot';
    if (frame.u <= this.u) return 'stale';
    if (frame.u !== this.u + 1) {
      this.u = -1;
      return 'gap';
    }
    this.apply(frame);
    this.u = frame.u;
    this.seq = frame.seq ?? this.seq;
    this.version++;
    return 'applied';
  }

  private apply(frame: BookFrame): void {
    for (const [p, q] of frame.bids) this.bids.set(this.price(p), this.size(q));
    for (const [p, q] of frame.asks) this.asks.set(this.price(p), this.size(q));
  }

  private price(text: string): bigint {
    const v = toUnits(text, this.priceDecimals);
    if (v === null) throw new BookError(`price ${text} does not fit ${this.priceDecimals} decimals`);
    return v;
  }

  private size(text: string): bigint {
    const v = toUnits(text, this.sizeDecimals);
    if (v === null) throw new BookError(`size ${text} does not fit ${this.sizeDecimals} decimals`);
    return v;
  }

  /** The best `n` levels of a side, best first, with cumulative totals. */
  levels(side: 'bids' | 'asks', n = Infinity): Level[] {
    const s = side === 'bids' ? this.bids : this.asks;
    const out: Level[] = [];
    let total = 0n;
    const count = Math.min(n, s.prices.length);
    for (let i = 0; i < count; i++) {
      const p = s.prices[i];
      const q = s.sizes.get(p)!;
      total += q;
      out.push({
        price: fromUnits(p, this.priceDecimals),
        quantity: fromUnits(q, this.sizeDecimals),
        total: fromUnits(total, this.sizeDecimals),
      });
    }
    return out;
  }

  depthCount(side: 'bids' | 'asks'): number {
    return (side === 'bids' ? this.bids : this.asks).prices.length;
  }

  bestBid(): string | null {
    const p = this.bids.prices[0];
    return p === undefined ? null : fromUnits(p, this.priceDecimals);
  }

  bestAsk(): string | null {
    const p = this.asks.prices[0];
    return p === undefined ? null : fromUnits(p, this.priceDecimals);
  }

  /** Best ask minus best bid, or null when a side is empty. */
  spread(): string | null {
    const b = this.bids.prices[0];
    const a = this.asks.prices[0];
    return b === undefined || a === undefined ? null : fromUnits(a - b, this.priceDecimals);
  }

  /** The mid price with one extra decimal (exact: (a + b) / 2 needs at most one more). */
  mid(): string | null {
    const b = this.bids.prices[0];
    const a = this.asks.prices[0];
    if (b === undefined || a === undefined) return null;
    return fromUnits(((a + b) * 10n) / 2n, this.priceDecimals + 1);
  }

  /**
   * Cumulative depth for drawing (numbers, charts only): per side, best level first, the
   * total size available at that price or better.
   */
  depthSeries(maxLevels = 200): { bids: Array<[number, number]>; asks: Array<[number, number]> } {
    const pf = Number(pow10(this.priceDecimals));
    const sf = Number(pow10(this.sizeDecimals));
    const side = (s: Side): Array<[number, number]> => {
      const out: Array<[number, number]> = [];
      let total = 0n;
      const count = Math.min(maxLevels, s.prices.length);
      for (let i = 0; i < count; i++) {
        const p = s.prices[i];
        total += s.sizes.get(p)!;
        out.push([Number(p) / pf, Number(total) / sf]);
      }
      return out;
    };
    return { bids: side(this.bids), asks: side(this.asks) };
  }
}
