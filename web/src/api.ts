/** The REST client: JSON in and out, errors as `ApiError` with the venue's stable code. */

import { apiBase } from './config';
import type { Balance, Candle, Fill, Instrument, Order, OrderRequest, Trade } from './types';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export type TokenSource = () => string | null;

const SESSION_ENDED = new Set(['token_invalid', 'token_expired', 'authentication_required', 'unknown_account']);

export class Api {
  /** Called with the error when a request fails for an expired or invalid token. */
  onUnauthorized: ((e: ApiError) => void) | null = null;

  constructor(
    readonly base: string = apiBase(),
    private readonly token: TokenSource = () => null,
  ) {}

  async request<T>(method: string, path: string, body?: unknown, auth = true): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const token = auth ? this.token() : null;
    if (token) headers.authorization = `Bearer ${token}`;
    let response: Response;
    try {
      response = await fetch(this.base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, 'network_error', 'the venue cannot be reached');
    }
    const text = await response.text();
    let data: unknown = null;
    if (text) {
      try {
        data = JSON.parse(text);
      } catch {
        data = null;
      }
    }
    if (!response.ok) {
      const err = (data as { error?: { code?: string; message?: string; field?: string } } | null)?.error;
      const e = new ApiError(response.status, err?.code ?? 'http_error', err?.message ?? response.statusText, err?.field);
      // Only a refused token ends the session (a wrong MFA code is a 401 too, and does not).
      if (response.status === 401 && token && SESSION_ENDED.has(e.code) && this.onUnauthorized) this.onUnauthorized(e);
      throw e;
    }
    return data as T;
  }

  // Auth ------------------------------------------------------------------
  register(username: string, password: string) {
    return this.request<{ account_id: number; username: string }>('POST', '/v1/auth/register', { username, password }, false);
  }
  login(username: string, password: string, totp?: string) {
    const body: Record<string, string> = { username, password };
    if (totp) body.totp = totp;
    return this.request<{ access_token: string; expires_in: number }>('POST', '/v1/auth/login', body, false);
  }
  mfaSetup() {
    return this.request<{ secret: string; otpauth_uri: string }>('POST', '/v1/auth/mfa/setup');
  }
  mfaEnable(code: string) {
    return this.request<{ ok: boolean }>('POST', '/v1/auth/mfa/enable', { code });
  }

  // Market data -------------------------------------------------------------
  instruments() {
    return this.request<Instrument[]>('GET', '/v1/instruments', undefined, false);
  }
  async trades(symbol: string, limit = 60): Promise<Trade[]> {
    const rows = await this.request<Array<{ trade_id: string; price: string; quantity: string; aggressor_side: 'buy' | 'sell'; time: number }>>(
      'GET', `/v1/trades/${encodeURIComponent(symbol)}?limit=${limit}`, undefined, false);
    return rows.map((t) => ({ id: t.trade_id, price: t.price, quantity: t.quantity, side: t.aggressor_side, time: t.time }));
  }
  async candles(symbol: string, interval: string, limit = 300): Promise<Candle[]> {
    const rows = await this.request<Array<Candle>>(
      'GET', `/v1/candles/${encodeURIComponent(symbol)}?interval=${interval}&limit=${limit}`, undefined, false);
    // REST candles start in milliseconds; the chart (and the WebSocket) use seconds.
    return rows.map((c) => ({ ...c, start: Math.floor(c.start / 1000) }));
  }

  // Account -----------------------------------------------------------------
  balances() {
    return this.request<Balance[]>('GET', '/v1/balances');
  }
  faucet(asset: string, amount: string) {
    return this.request<{ asset: string; amount: string; available: string }>('POST', '/v1/faucet', { asset, amount });
  }
  orders(status: 'open' | 'closed' | 'all', limit = 100) {
    return this.request<Order[]>('GET', `/v1/orders?status=${status}&limit=${limit}`);
  }
  fills(limit = 100) {
    return this.request<Fill[]>('GET', `/v1/fills?limit=${limit}`);
  }
  placeOrder(order: OrderRequest) {
    return this.request<Order>('POST', '/v1/orders', order);
  }
  cancelOrder(id: string) {
    return this.request<Order>('DELETE', `/v1/orders/${encodeURIComponent(id)}`);
  }
  amendOrder(id: string, change: { price?: string; quantity?: string }) {
    return this.request<Order>('PATCH', `/v1/orders/${encodeURIComponent(id)}`, change);
  }
}
