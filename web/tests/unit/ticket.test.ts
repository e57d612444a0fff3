import { describe, expect, it } from 'vitest';
import { defaultTicket, maxBuyQuantity, maxSellQuantity, priceBand, type TicketContext, type TicketInput, validateTicket } from '../../src/ticket';
import type { Instrument } from '../../src/types';

const BTC_USD: Instrument = {
  symbol: 'BTC-USD', base: 'BTC', quote: 'USD', tick_size: '0.01', lot_size: '0.0001',
  min_quantity: '0.0001', max_quantity: '100.0000', max_price: '1000000.00', price_band_bps: 1000,
  maker_fee_bps: 10, taker_fee_bps: 20, reference_price: '60000.00',
};

const ctx = (over: Partial<TicketContext> = {}): TicketContext => ({
  instrument: BTC_USD,
  balances: {
    USD: { asset: 'USD', available: '10000.000000', held: '0.000000' },
    BTC: { asset: 'BTC', available: '0.50000000', held: '0.00000000' },
  },
  lastPrice: null,
  bestBid: '59990.00',
  bestAsk: '60010.00',
  now: 1_700_000_000_000,
  ...over,
});
const input = (over: Partial<TicketInput> = {}): TicketInput => ({ ...defaultTicket(), price: '60000.00', quantity: '0.1000', ...over });

describe('limit orders', () => {
  it('produce the request with exact strings', () => {
    const r = validateTicket(input(), ctx());
    expect(r.errors).toEqual({});
    expect(r.order).toEqual({ symbol: 'BTC-USD', side: 'buy', type: 'limit', price: '60000.00', quantity: '0.1000', time_in_force: 'gtc' });
    expect(r.cost).toEqual({ asset: 'USD', amount: '6000.000000' });
  });
  it('need prices on the tick and under the maximum', () => {
    expect(validateTicket(input({ price: '60000.005' }), ctx()).errors.price).toMatch(/tick size 0.01/);
    expect(validateTicket(input({ price: '' }), ctx()).errors.price).toMatch(/required/);
    expect(validateTicket(input({ price: '0' }), ctx()).errors.price).toMatch(/above zero/);
    expect(validateTicket(input({ price: '-5' }), ctx()).errors.price).toMatch(/above zero/);
    expect(validateTicket(input({ price: 'abc' }), ctx()).errors.price).toMatch(/number/);
    expect(validateTicket(input({ price: '1e5' }), ctx()).errors.price).toMatch(/number/);
    expect(validateTicket(input({ price: '1000000.01' }), ctx({ instrument: { ...BTC_USD, price_band_bps: 0 } })).errors.price).toMatch(/maximum/);
  });
  it('need quantities on the lot, within min and max', () => {
    expect(validateTicket(input({ quantity: '0.00005' }), ctx()).errors.quantity).toMatch(/lot size 0.0001/);
    expect(validateTicket(input({ quantity: '100.0001' }), ctx()).errors.quantity).toMatch(/maximum/);
    expect(validateTicket(input({ quantity: '0' }), ctx()).errors.quantity).toMatch(/above zero/);
    const coarse = { ...BTC_USD, min_quantity: '0.0100' };
    expect(validateTicket(input({ quantity: '0.0010' }), ctx({ instrument: coarse })).errors.quantity).toMatch(/minimum/);
  });
  it('stay inside the price band around the last trade', () => {
    expect(priceBand(BTC_USD, null)).toEqual(['54000.00', '66000.00']);
    expect(priceBand(BTC_USD, '50000.00')).toEqual(['45000.00', '55000.00']);
    expect(validateTicket(input({ price: '66000.01' }), ctx()).errors.price).toMatch(/band 54000.00 – 66000.00/);
    expect(validateTicket(input({ price: '66000.00', quantity: '0.0001' }), ctx()).errors.price).toBeUndefined();
  });
  it('check the available balance of what the order pays with', () => {
    expect(validateTicket(input({ quantity: '0.1667' }), ctx()).errors.balance).toMatch(/Not enough USD: needs 10002, available 10000/);
    expect(validateTicket(input({ quantity: '0.1666' }), ctx()).errors.balance).toBeUndefined();
    expect(validateTicket(input({ side: 'sell', quantity: '0.5001' }), ctx()).errors.balance).toMatch(/Not enough BTC/);
    expect(validateTicket(input({ side: 'sell', quantity: '0.5000' }), ctx()).errors).toEqual({});
    // Signed out: no balance check (the button asks to log in).
    expect(validateTicket(input({ quantity: '99' }), ctx({ balances: null })).errors.balance).toBeUndefined();
  });
  it('refuse post-only when it would trade at once', () => {
    expect(validateTicket(input({ price: '60010.00', postOnly: true, quantity: '0.0100' }), ctx()).errors.postOnly).toMatch(/would trade/);
    expect(validateTicket(input({ price: '60009.99', postOnly: true, quantity: '0.0100' }), ctx()).order?.post_only).toBe(true);
    expect(validateTicket(input({ side: 'sell', price: '59990.00', postOnly: true, quantity: '0.0100' }), ctx()).errors.postOnly).toMatch(/would trade/);
    expect(validateTicket(input({ postOnly: true, tif: 'ioc', quantity: '0.0100' }), ctx()).errors.postOnly).toMatch(/IOC or FOK/);
  });
  it('need a future expiry for GTD', () => {
    const c = ctx();
    expect(validateTicket(input({ tif: 'gtd', quantity: '0.0100' }), c).errors.expireTime).toMatch(/required/);
    expect(validateTicket(input({ tif: 'gtd', expireTime: c.now - 1, quantity: '0.0100' }), c).errors.expireTime).toMatch(/future/);
    const ok = validateTicket(input({ tif: 'gtd', expireTime: c.now + 60_000, quantity: '0.0100' }), c);
    expect(ok.order?.expire_time).toBe(c.now + 60_000);
  });
});

describe('market and stop orders', () => {
  it('market orders are IOC or FOK and carry no price', () => {
    expect(validateTicket(input({ type: 'market', tif: 'gtc' }), ctx()).errors.tif).toMatch(/IOC or FOK/);
    const r = validateTicket(input({ type: 'market', tif: 'ioc', side: 'sell' }), ctx());
    expect(r.order).toEqual({ symbol: 'BTC-USD', side: 'sell', type: 'market', quantity: '0.1000', time_in_force: 'ioc' });
  });
  it('a market buy by quote amount checks the amount, IOC only', () => {
    const base = input({ type: 'market', tif: 'ioc', amountIn: 'quote', quoteQuantity: '2500.50' });
    expect(validateTicket(base, ctx()).order).toEqual({ symbol: 'BTC-USD', side: 'buy', type: 'market', quote_quantity: '2500.50', time_in_force: 'ioc' });
    expect(validateTicket({ ...base, tif: 'fok' }, ctx()).errors.tif).toMatch(/IOC/);
    expect(validateTicket({ ...base, quoteQuantity: '10000.000001' }, ctx()).errors.balance).toMatch(/Not enough USD/);
    expect(validateTicket({ ...base, quoteQuantity: '1.0000001' }, ctx()).errors.quoteQuantity).toMatch(/6 decimals/);
  });
  it('a market buy by size needs some quote available', () => {
    const zero = ctx({ balances: { USD: { asset: 'USD', available: '0.000000', held: '0' } } });
    expect(validateTicket(input({ type: 'market', tif: 'ioc' }), zero).errors.balance).toMatch(/No USD/);
  });
  it('stop orders need a stop price on the tick', () => {
    expect(validateTicket(input({ type: 'stop_limit', stopPrice: '' }), ctx()).errors.stopPrice).toMatch(/Stop price is required/);
    expect(validateTicket(input({ type: 'stop_market', tif: 'ioc', stopPrice: '59000.001' }), ctx()).errors.stopPrice).toMatch(/tick/);
    const r = validateTicket(input({ type: 'stop_limit', stopPrice: '61000.00', price: '61100.00' }), ctx());
    expect(r.order).toMatchObject({ type: 'stop_limit', stop_price: '61000.00', price: '61100.00', time_in_force: 'gtc' });
    // The band applies to limit orders only (a stop-limit is checked when it triggers).
    expect(validateTicket(input({ type: 'stop_limit', stopPrice: '70000.00', price: '70000.00', quantity: '0.0100' }), ctx()).errors).toEqual({});
  });
});

describe('max buttons', () => {
  it('buy the most whole lots the balance pays for', () => {
    expect(maxBuyQuantity('10000.000000', '60000.00', BTC_USD)).toBe('0.1666');
    expect(maxBuyQuantity('1.000000', '60000.00', BTC_USD)).toBeNull();
  });
  it('sell whole lots of what is available', () => {
    expect(maxSellQuantity('0.02997000', BTC_USD)).toBe('0.0299');
    expect(maxSellQuantity('1000.00000000', BTC_USD)).toBe('100.0000');
  });
});
