/** Shapes of the venue's API (services/gateway/schemas.py and the WebSocket frames). */

export interface Instrument {
  symbol: string;
  base: string;
  quote: string;
  tick_size: string;
  lot_size: string;
  min_quantity: string;
  max_quantity: string;
  max_price: string;
  price_band_bps: number;
  maker_fee_bps: number;
  taker_fee_bps: number;
  reference_price: string | null;
}

export interface Balance {
  asset: string;
  available: string;
  held: string;
  total?: string;
}

export type Side = 'buy' | 'sell';
export type OrderType = 'limit' | 'market' | 'stop_limit' | 'stop_market';
export type TimeInForce = 'gtc' | 'ioc' | 'fok' | 'gtd';

export interface OrderRequest {
  symbol: string;
  side: Side;
  type: OrderType;
  price?: string;
  quantity?: string;
  quote_quantity?: string;
  stop_price?: string;
  time_in_force?: TimeInForce;
  expire_time?: number;
  post_only?: boolean;
  client_order_id?: string;
}

export interface Fill {
  trade_id: string;
  order_id: string;
  symbol: string;
  side: string;
  price: string;
  quantity: string;
  fee: string;
  fee_asset: string;
  liquidity: string;
  time: number;
}

export interface Order {
  id: string;
  client_order_id: string | null;
  symbol: string;
  side: Side;
  type: OrderType;
  time_in_force: TimeInForce;
  price: string | null;
  quantity: string | null;
  quote_quantity: string | null;
  stop_price: string | null;
  expire_time: number | null;
  post_only: boolean;
  stp: string;
  status: string;
  leaves: string;
  filled_quantity: string;
  filled_notional: string;
  average_price: string | null;
  fee_total: string;
  fee_asset: string;
  reason: string | null;
  created_time: number;
  updated_time: number;
}

/** A trade on the tape: REST `/v1/trades` (time in ms) and WS `trades` (time in ns) unified. */
export interface Trade {
  id: string;
  price: string;
  quantity: string;
  side: Side;
  /** Milliseconds since the epoch. */
  time: number;
}

/** A candle, `start` in seconds since the epoch (the chart's unit). */
export interface Candle {
  start: number;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
}

export interface ApiErrorBody {
  error: { code: string; message: string; field?: string };
}
