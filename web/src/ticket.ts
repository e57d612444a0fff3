/**
 * The order ticket's rules, checked before anything is sent: the same rules the venue
 * applies (core/matching.py `_validate`, holds in `_initial_hold`, the price band), in the
 * instrument's own units, with exact decimals. The venue stays the authority; this is so a
 * trader learns what is wrong while typing, field by field.
 */

import { cmp, decimalsOf, fromUnits, isMultiple, mul, parse, pow10, toUnits } from './decimal';
import type { Balance, Instrument, OrderRequest, OrderType, Side, TimeInForce } from './types';

export interface TicketInput {
  side: Side;
  type: OrderType;
  price: string;
  stopPrice: string;
  quantity: string;
  /** Market and stop-market buys: size the order in base quantity or in quote amount. */
  amountIn: 'base' | 'quote';
  quoteQuantity: string;
  tif: TimeInForce;
  /** GTD only: milliseconds since the epoch (the form's local date-time, converted). */
  expireTime: number | null;
  postOnly: boolean;
}

export interface TicketContext {
  instrument: Instrument;
  /** Balances by asset code; null when signed out (no balance check). */
  balances: Record<string, Balance> | null;
  /** The last trade price, for the price band (null: the instrument's reference price). */
  lastPrice: string | null;
  bestBid: string | null;
  bestAsk: string | null;
  now: number;
}

export type TicketField = 'price' | 'stopPrice' | 'quantity' | 'quoteQuantity' | 'tif' | 'expireTime' | 'postOnly' | 'balance';

export interface TicketResult {
  errors: Partial<Record<TicketField, string>>;
  /** The request to send, when there are no errors. */
  order: OrderRequest | null;
  /** What the order would reserve: asset and exact amount (null when unknown, e.g. market buys by size). */
  cost: { asset: string; amount: string } | null;
}

export const TIFS_FOR: Record<OrderType, TimeInForce[]> = {
  limit: ['gtc', 'ioc', 'fok', 'gtd'],
  stop_limit: ['gtc', 'ioc', 'fok', 'gtd'],
  market: ['ioc', 'fok'],
  stop_market: ['ioc', 'fok'],
};

export const defaultTicket = (): TicketInput => ({
  side: 'buy',
  type: 'limit',
  price: '',
  stopPrice: '',
  quantity: '',
  amountIn: 'base',
  quoteQuantity: '',
  tif: 'gtc',
  expireTime: null,
  postOnly: false,
});

const needsPrice = (t: OrderType) => t === 'limit' || t === 'stop_limit';
const isStop = (t: OrderType) => t === 'stop_limit' || t === 'stop_market';
const isMarket = (t: OrderType) => t === 'market' || t === 'stop_market';

function positive(text: string): boolean {
  const d = parse(text);
  return d !== null && d.units > 0n;
}

/** Check a price field against tick size and the maximum price; a message, or null when fine. */
export function checkPrice(text: string, inst: Instrument, what = 'Price'): string | null {
  const t = text.trim();
  if (!t) return `${what} is required`;
  if (!parse(t)) return `${what} must be a number like ${inst.tick_size}`;
  if (!positive(t)) return `${what} must be above zero`;
  if (!isMultiple(t, inst.tick_size)) return `${what} must be a multiple of the tick size ${inst.tick_size}`;
  if (cmp(t, inst.max_price) > 0) return `${what} is above the maximum ${inst.max_price}`;
  return null;
}

/** Check a quantity field against lot size and the instrument's limits. */
export function checkQuantity(text: string, inst: Instrument): string | null {
  const t = text.trim();
  if (!t) return 'Quantity is required';
  if (!parse(t)) return `Quantity must be a number like ${inst.lot_size}`;
  if (!positive(t)) return 'Quantity must be above zero';
  if (!isMultiple(t, inst.lot_size)) return `Quantity must be a multiple of the lot size ${inst.lot_size}`;
  if (cmp(t, inst.min_quantity) < 0) return `Quantity is below the minimum ${inst.min_quantity}`;
  if (cmp(t, inst.max_quantity) > 0) return `Quantity is above the maximum ${inst.max_quantity}`;
  return null;
}

/** The price band the venue enforces on limit orders, [low, high] in price strings, or null. */
export function priceBand(inst: Instrument, lastPrice: string | null): [string, string] | null {
  const reference = lastPrice ?? inst.reference_price;
  if (!inst.price_band_bps || !reference) return null;
  const decimals = decimalsOf(inst.tick_size);
  const tick = toUnits(inst.tick_size, decimals)!;
  const ref = toUnits(reference, decimals);
  if (ref === null) return null;
  const refTicks = ref / tick;
  const width = (refTicks * BigInt(inst.price_band_bps)) / 10_000n;
  return [fromUnits((refTicks - width) * tick, decimals), fromUnits((refTicks + width) * tick, decimals)];
}

function decimalsOfBalance(b: Balance | undefined): number | null {
  const d = b ? parse(b.available) : null;
  return d ? d.scale : null;
}

export function validateTicket(input: TicketInput, ctx: TicketContext): TicketResult {
  const inst = ctx.instrument;
  const errors: TicketResult['errors'] = {};
  const { side, type } = input;
  const byQuote = isMarket(type) && side === 'buy' && input.amountIn === 'quote';

  if (needsPrice(type)) {
    const e = checkPrice(input.price, inst);
    if (e) errors.price = e;
  }
  if (isStop(type)) {
    const e = checkPrice(input.stopPrice, inst, 'Stop price');
    if (e) errors.stopPrice = e;
  }
  if (byQuote) {
    const t = input.quoteQuantity.trim();
    const quoteDecimals = decimalsOfBalance(ctx.balances?.[inst.quote]);
    if (!t) errors.quoteQuantity = 'Amount is required';
    else if (!parse(t)) errors.quoteQuantity = 'Amount must be a number';
    else if (!positive(t)) errors.quoteQuantity = 'Amount must be above zero';
    else if (quoteDecimals !== null && toUnits(t, quoteDecimals) === null)
      errors.quoteQuantity = `Amount has more than ${quoteDecimals} decimals`;
  } else {
    const e = checkQuantity(input.quantity, inst);
    if (e) errors.quantity = e;
  }

  // Time in force and post-only, as the engine's rules have them.
  if (!TIFS_FOR[type].includes(input.tif)) {
    errors.tif = isMarket(type) ? 'Market orders are IOC or FOK' : 'Choose a time in force';
  } else if (byQuote && input.tif !== 'ioc') {
    errors.tif = 'A buy by amount is IOC';
  }
  if (input.tif === 'gtd' && !errors.tif) {
    if (input.expireTime === null || !Number.isFinite(input.expireTime)) errors.expireTime = 'Expiry is required for GTD';
    else if (input.expireTime <= ctx.now) errors.expireTime = 'Expiry must be in the future';
  }
  if (input.postOnly) {
    if (isMarket(type)) errors.postOnly = 'Post-only needs a limit price';
    else if (input.tif === 'ioc' || input.tif === 'fok') errors.postOnly = 'Post-only cannot be IOC or FOK';
    else if (type === 'limit' && !errors.price) {
      const crosses = side === 'buy'
        ? ctx.bestAsk !== null && cmp(input.price, ctx.bestAsk) >= 0
        : ctx.bestBid !== null && cmp(input.price, ctx.bestBid) <= 0;
      if (crosses) errors.postOnly = 'Post-only: this price would trade at once';
    }
  }
  if (type === 'limit' && !errors.price) {
    const band = priceBand(inst, ctx.lastPrice);
    if (band && (cmp(input.price, band[0]) < 0 || cmp(input.price, band[1]) > 0))
      errors.price = `Price is outside the band ${band[0]} – ${band[1]}`;
  }

  // What it reserves, and whether the account has it.
  let cost: TicketResult['cost'] = null;
  if (side === 'sell' && !errors.quantity) {
    cost = { asset: inst.base, amount: input.quantity.trim() };
  } else if (side === 'buy' && needsPrice(type) && !errors.price && !errors.quantity) {
    cost = { asset: inst.quote, amount: mul(input.price.trim(), input.quantity.trim()) };
  } else if (byQuote && !errors.quoteQuantity) {
    cost = { asset: inst.quote, amount: input.quoteQuantity.trim() };
  }
  if (ctx.balances) {
    const b = ctx.balances[cost?.asset ?? (side === 'buy' ? inst.quote : inst.base)];
    const available = b?.available ?? '0';
    if (cost && cmp(cost.amount, available) > 0) {
      errors.balance = `Not enough ${cost.asset}: needs ${trimZeros(cost.amount)}, available ${trimZeros(available)}`;
    } else if (!cost && side === 'buy' && type === 'market' && !byQuote && !positive(available)) {
      errors.balance = `No ${inst.quote} available`;
    }
  }

  if (Object.keys(errors).length > 0) return { errors, order: null, cost };
  const order: OrderRequest = { symbol: inst.symbol, side, type, time_in_force: input.tif };
  if (needsPrice(type)) order.price = input.price.trim();
  if (isStop(type)) order.stop_price = input.stopPrice.trim();
  if (byQuote) order.quote_quantity = input.quoteQuantity.trim();
  else order.quantity = input.quantity.trim();
  if (input.tif === 'gtd' && input.expireTime !== null) order.expire_time = input.expireTime;
  if (input.postOnly) order.post_only = true;
  return { errors, order, cost };
}

/** "12.500000" -> "12.5", "3.000" -> "3" (exact; for messages). */
export function trimZeros(text: string): string {
  if (!text.includes('.')) return text;
  return text.replace(/0+$/, '').replace(/\.$/, '');
}

/** The largest quantity (a multiple of the lot) that `available` quote buys at `price`, or null. */
export function maxBuyQuantity(available: string, price: string, inst: Instrument): string | null {
  if (checkPrice(price, inst) !== null) return null;
  const lotDec = decimalsOf(inst.lot_size);
  const lot = toUnits(inst.lot_size, lotDec)!;
  const a = parse(available);
  const p = parse(price);
  if (!a || !p || p.units <= 0n) return null;
  // quantity_units (10^-lotDec) = floor(available / price * 10^lotDec), then down to a lot multiple.
  const num = a.units * pow10(p.scale + lotDec);
  const den = p.units * pow10(a.scale);
  let units = num / den;
  units -= units % lot;
  const max = toUnits(inst.max_quantity, lotDec)!;
  if (units > max) units = max - (max % lot);
  return units > 0n ? fromUnits(units, lotDec) : null;
}

/** The largest sell quantity (a multiple of the lot) that `available` base allows, or null. */
export function maxSellQuantity(available: string, inst: Instrument): string | null {
  const lotDec = decimalsOf(inst.lot_size);
  const lot = toUnits(inst.lot_size, lotDec)!;
  const a = parse(available);
  if (!a) return null;
  let units = a.scale > lotDec ? a.units / pow10(a.scale - lotDec) : a.units * pow10(lotDec - a.scale);
  units -= units % lot;
  const max = toUnits(inst.max_quantity, lotDec)!;
  if (units > max) units = max - (max % lot);
  return units > 0n ? fromUnits(units, lotDec) : null;
}
