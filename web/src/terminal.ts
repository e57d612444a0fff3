/**
 * The trading screen's state and its wiring to the venue: REST for the initial picture and
 * history, one WebSocket for everything live. Cold state (instruments, session, balances,
 * orders) is in Preact signals; hot state (books, tapes) is plain data drawn by the render
 * loop (`frame.ts`) so 200 updates a second cost one redraw per frame.
 */

import { batch, computed, signal } from '@preact/signals';
import { Api, ApiError } from './api';
import { OrderBook } from './book';
import { add, decimalsOf, display, percentChange } from './decimal';
import { invalidate } from './frame';
import { trimZeros } from './ticket';
import { perf } from './perf';
import type { Balance, Candle, Fill, Instrument, Order, OrderRequest, Trade } from './types';
import { Connection, type ConnState, type Frame, type Subscription, WsRequestError } from './ws';
import { wsUrl } from './config';

export interface Session {
  token: string;
  username: string;
  expiresAt: number;
}

export interface Ticker {
  last: string | null;
  open24: string | null;
  change: string | null;
}

export type Interval = '1m' | '5m' | '1h';

const SESSION_KEY = 'rialto.session';
const BOOK_DEPTH = 100;
const TAPE_LENGTH = 80;

function loadSession(): Session | null {
  try {
    const raw = sessionStorage.getItem(SESSION_KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as Session;
    return s.expiresAt > Date.now() + 5_000 ? s : null;
  } catch {
    return null;
  }
}

type Listener = () => void;

export class Terminal {
  // Cold state -------------------------------------------------------------
  readonly instruments = signal<Instrument[]>([]);
  readonly symbol = signal<string>('');
  readonly interval = signal<Interval>('1m');
  readonly conn = signal<ConnState>('connecting');
  readonly session = signal<Session | null>(loadSession());
  readonly balances = signal<Record<string, Balance> | null>(null);
  readonly openOrders = signal<Order[]>([]);
  readonly orderHistory = signal<Order[]>([]);
  readonly fills = signal<Fill[]>([]);
  readonly tickers = signal<Record<string, Ticker>>({});
  /** Best bid and ask of the shown symbol (for the ticket), updated by the render loop. */
  readonly top = signal<{ bid: string | null; ask: string | null }>({ bid: null, ask: null });
  readonly notice = signal<{ kind: 'info' | 'error'; text: string; at: number } | null>(null);
  readonly loadError = signal<string | null>(null);
  readonly instrument = computed(() => this.instruments.value.find((i) => i.symbol === this.symbol.value) ?? null);

  // Hot state --------------------------------------------------------------
  readonly books = new Map<string, OrderBook>();
  readonly tapes = new Map<string, Trade[]>();
  private readonly bookListeners = new Set<Listener>();
  private readonly tapeListeners = new Set<Listener>();
  private readonly candleListeners = new Set<(symbol: string, interval: string, c: Candle) => void>();
  private readonly resetListeners = new Set<Listener>();

  readonly api: Api;
  readonly ws: Connection;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private expiryTimer: ReturnType<typeof setTimeout> | null = null;
  private tickerTimer: ReturnType<typeof setInterval> | null = null;

  constructor(api?: Api) {
    this.api = api ?? new Api(undefined, () => this.session.value?.token ?? null);
    this.api.onUnauthorized = (e) => this.expire(e.message);
    this.ws = new Connection(wsUrl(this.api.base), {
      onFrame: (f, t) => this.onFrame(f, t),
      onState: (s) => (this.conn.value = s),
      onOpen: () => this.onSocketOpen(),
      onAuthFailed: (_code, message) => this.expire(message),
    });
  }

  // Start-up ------------------------------------------------------------------
  async start(): Promise<void> {
    // The socket's handshake overlaps the instruments' request; subscriptions follow them.
    this.ws.setToken(this.session.value?.token ?? null);
    this.ws.start();
    let list: Instrument[];
    try {
      list = await this.api.instruments();
    } catch (e) {
      this.loadError.value = `Cannot load instruments: ${(e as Error).message}. Retrying…`;
      setTimeout(() => void this.start(), 2_000);
      return;
    }
    this.loadError.value = null;
    for (const inst of list) {
      this.books.set(inst.symbol, new OrderBook(decimalsOf(inst.tick_size), decimalsOf(inst.lot_size)));
      this.tapes.set(inst.symbol, []);
    }
    const wanted = decodeURIComponent(location.hash.replace(/^#/, ''));
    const first = list.find((i) => i.symbol === wanted) ?? list[0];
    batch(() => {
      this.instruments.value = list;
      this.symbol.value = first?.symbol ?? '';
    });
    for (const inst of list) this.ws.subscribe({ channel: 'trades', symbol: inst.symbol });
    if (first) this.watch(first.symbol);
    if (this.session.value) {
      this.armExpiry();
      this.watchAccount();
    }
    void this.loadTickers();
    this.tickerTimer = setInterval(() => void this.loadTickers(), 5 * 60_000);
    addEventListener('hashchange', () => {
      const s = decodeURIComponent(location.hash.replace(/^#/, ''));
      if (s && s !== this.symbol.value && this.books.has(s)) this.select(s);
    });
  }

  stop(): void {
    this.ws.stop();
    if (this.tickerTimer) clearInterval(this.tickerTimer);
  }

  // Market selection --------------------------------------------------------------
  private bookSub = (symbol: string): Subscription => ({ channel: 'book', symbol, depth: BOOK_DEPTH });
  private candleSub = (symbol: string, interval: string): Subscription => ({ channel: 'candles', symbol, interval });

  select(symbol: string): void {
    const old = this.symbol.value;
    if (symbol === old || !this.books.has(symbol)) return;
    if (old) {
      this.ws.unsubscribe(this.bookSub(old));
      this.ws.unsubscribe(this.candleSub(old, this.interval.value));
      this.books.get(old)?.invalidate();
    }
    this.symbol.value = symbol;
    if (location.hash !== `#${symbol}`) history.replaceState(null, '', `#${encodeURIComponent(symbol)}`);
    this.watch(symbol);
  }

  setInterval(interval: Interval): void {
    const old = this.interval.value;
    if (old === interval) return;
    this.ws.unsubscribe(this.candleSub(this.symbol.value, old));
    this.interval.value = interval;
    this.ws.subscribe(this.candleSub(this.symbol.value, interval));
    this.emitReset();
  }

  private watch(symbol: string): void {
    this.ws.subscribe(this.bookSub(symbol));
    this.ws.subscribe(this.candleSub(symbol, this.interval.value));
    void this.loadTape(symbol);
    this.emitReset();
    this.notifyBook();
    this.notifyTape();
  }

  async loadTape(symbol: string): Promise<void> {
    try {
      const trades = await this.api.trades(symbol, TAPE_LENGTH);
      this.mergeTrades(symbol, trades);
    } catch {
      /* the live stream still fills it */
    }
  }

  loadCandles(symbol: string, interval: string): Promise<Candle[]> {
    return this.api.candles(symbol, interval, 500);
  }

  /** Last price and 24-hour change for every market, from hourly candles. */
  async loadTickers(): Promise<void> {
    const list = this.instruments.value;
    const opens: Record<string, { open24: string | null; close: string | null }> = {};
    await Promise.all(list.map(async (inst) => {
      try {
        const candles = await this.api.candles(inst.symbol, '1h', 25);
        const since = Date.now() / 1000 - 24 * 3600;
        const window = candles.filter((c) => c.start + 3600 > since);
        opens[inst.symbol] = {
          open24: window.length ? window[0].open : null,
          close: candles.length ? candles[candles.length - 1].close : null,
        };
      } catch {
        /* keep what we had */
      }
    }));
    // Merged into the current value: trades may have moved the last price meanwhile.
    const out: Record<string, Ticker> = { ...this.tickers.value };
    for (const [symbol, { open24, close }] of Object.entries(opens)) {
      const last = out[symbol]?.last ?? close;
      out[symbol] = { last, open24, change: open24 && last ? percentChange(open24, last) : null };
    }
    this.tickers.value = out;
  }

  // Hot data subscriptions for widgets ---------------------------------------------
  onBook(l: Listener): () => void {
    this.bookListeners.add(l);
    return () => this.bookListeners.delete(l);
  }
  onTape(l: Listener): () => void {
    this.tapeListeners.add(l);
    return () => this.tapeListeners.delete(l);
  }
  onCandle(l: (symbol: string, interval: string, c: Candle) => void): () => void {
    this.candleListeners.add(l);
    return () => this.candleListeners.delete(l);
  }
  /** The shown market, its interval or the socket changed: reload what is drawn. */
  onReset(l: Listener): () => void {
    this.resetListeners.add(l);
    return () => this.resetListeners.delete(l);
  }
  private notifyBook(): void {
    for (const l of this.bookListeners) invalidate(l);
  }
  private notifyTape(): void {
    for (const l of this.tapeListeners) invalidate(l);
  }
  private emitReset(): void {
    for (const l of this.resetListeners) l();
  }

  get book(): OrderBook | null {
    return this.books.get(this.symbol.value) ?? null;
  }
  get tape(): Trade[] {
    return this.tapes.get(this.symbol.value) ?? [];
  }

  // Frames --------------------------------------------------------------------------
  private onSocketOpen(): void {
    for (const book of this.books.values()) book.invalidate();
    this.notifyBook();
    // Whatever happened while the socket was down is fetched again.
    const symbol = this.symbol.value;
    if (symbol) void this.loadTape(symbol);
    this.emitReset();
    if (this.session.value) this.refreshAccount(0);
  }

  private onFrame(frame: Frame, arrived: number): void {
    switch (frame.type) {
      case 'book_snapshot':
      case 'book': {
        const symbol = frame.symbol as string;
        const book = this.books.get(symbol);
        if (!book) return;
        if (frame.type === 'book_snapshot') {
          book.applySnapshot(frame as unknown as Parameters<OrderBook['applySnapshot']>[0]);
        } else {
          const result = book.applyDelta(frame as unknown as Parameters<OrderBook['applyDelta']>[0]);
          if (result === 'gap') {
            perf.gaps++;
            this.ws.resubscribe(this.bookSub(symbol));
            return;
          }
          if (result !== 'applied') return;
        }
        if (symbol === this.symbol.value) {
          perf.arrived(arrived, (frame.bids as unknown[]).length + (frame.asks as unknown[]).length);
          this.notifyBook();
        }
        return;
      }
      case 'trades': {
        const symbol = frame.symbol as string;
        if (symbol === this.symbol.value) perf.tradesArrived(arrived);
        const rows = frame.trades as Array<{ price: string; quantity: string; side: 'buy' | 'sell'; seq: number; index: number; time: number }>;
        this.mergeTrades(symbol, rows.map((t) => ({
          id: `${t.seq}-${t.index}`, price: t.price, quantity: t.quantity, side: t.side, time: Math.floor(t.time / 1e6),
        })));
        return;
      }
      case 'candle': {
        const c = frame.candle as Candle;
        for (const l of this.candleListeners) l(frame.symbol as string, frame.interval as string, c);
        return;
      }
      case 'balances': {
        const list = frame.balances as Balance[];
        const out: Record<string, Balance> = {};
        for (const b of list) out[b.asset] = { ...b, total: add(b.available, b.held) };
        this.balances.value = out;
        return;
      }
      case 'order_event':
        this.onOrderEvent(frame);
        return;
      default:
        return;
    }
  }

  private mergeTrades(symbol: string, trades: Trade[]): void {
    if (trades.length === 0) return;
    const tape = this.tapes.get(symbol);
    if (!tape) return;
    const seen = new Set(tape.map((t) => t.id));
    const fresh = trades.filter((t) => !seen.has(t.id));
    if (fresh.length === 0) return;
    const key = (id: string) => id.split('-').map(Number) as [number, number];
    const merged = [...fresh, ...tape].sort((a, b) => {
      const [as, ai] = key(a.id);
      const [bs, bi] = key(b.id);
      return bs - as || bi - ai;
    });
    merged.length = Math.min(merged.length, TAPE_LENGTH);
    this.tapes.set(symbol, merged);
    const newest = merged[0];
    const tickers = this.tickers.value;
    const t = tickers[symbol] ?? { last: null, open24: null, change: null };
    if (t.last !== newest.price) {
      const open24 = t.open24 ?? newest.price;
      this.tickers.value = {
        ...tickers,
        [symbol]: { last: newest.price, open24, change: percentChange(open24, newest.price) },
      };
    }
    if (symbol === this.symbol.value) this.notifyTape();
  }

  private onOrderEvent(frame: Frame): void {
    const kind = frame.event as string;
    if (kind === 'trade') {
      const inst = this.instruments.value.find((i) => i.symbol === frame.symbol);
      const qty = inst ? trimZeros(String(frame.quantity)) : String(frame.quantity);
      const price = inst ? display(String(frame.price), inst.tick_size) : String(frame.price);
      this.say('info', `Filled ${qty} ${inst?.base ?? ''} at ${price} (${frame.liquidity})`);
    }
    this.refreshAccount();
  }

  // Account ---------------------------------------------------------------------------
  private watchAccount(): void {
    this.ws.subscribe({ channel: 'orders' });
    this.ws.subscribe({ channel: 'balances' });
    this.refreshAccount(0);
  }

  /** Reload orders, fills and balances from REST soon (several events in a burst: one reload). */
  refreshAccount(delay = 120): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      void this.loadAccount();
    }, delay);
  }

  private async loadAccount(): Promise<void> {
    if (!this.session.value) return;
    try {
      const [open, all, fills, balances] = await Promise.all([
        this.api.orders('open', 200),
        this.api.orders('all', 100),
        this.api.fills(100),
        this.api.balances(),
      ]);
      const out: Record<string, Balance> = {};
      for (const b of balances) out[b.asset] = b;
      batch(() => {
        this.openOrders.value = open;
        this.orderHistory.value = all;
        this.fills.value = fills;
        this.balances.value = out;
      });
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 401)) this.say('error', `Could not load the account: ${(e as Error).message}`);
    }
  }

  signIn(username: string, token: string, expiresIn: number): void {
    const session: Session = { token, username, expiresAt: Date.now() + expiresIn * 1000 };
    try {
      sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
    } catch {
      /* private mode: the session lasts as long as the page */
    }
    this.session.value = session;
    this.ws.setToken(token);
    this.armExpiry();
    this.watchAccount();
  }

  /** Access tokens are short-lived and there is no refresh: sign out when this one ends. */
  private armExpiry(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    const s = this.session.value;
    if (!s) return;
    this.expiryTimer = setTimeout(() => this.expire('the session ended'), Math.max(0, s.expiresAt - Date.now()));
  }

  signOut(message?: string): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = null;
    try {
      sessionStorage.removeItem(SESSION_KEY);
    } catch {
      /* ignore */
    }
    batch(() => {
      this.session.value = null;
      this.balances.value = null;
      this.openOrders.value = [];
      this.orderHistory.value = [];
      this.fills.value = [];
    });
    this.ws.setToken(null);
    if (message) this.say('info', message);
  }

  private expire(message: string): void {
    if (this.session.value) this.signOut(`Signed out: ${message}. Log in again.`);
  }

  say(kind: 'info' | 'error', text: string): void {
    this.notice.value = { kind, text, at: Date.now() };
  }

  // Orders ------------------------------------------------------------------------------
  /** Place over the socket when it is live (the venue's order entry), else over REST. */
  async placeOrder(order: OrderRequest): Promise<Order> {
    const request = { ...order, client_order_id: order.client_order_id ?? clientOrderId() };
    let placed: Order;
    if (this.ws.state === 'live' && this.ws.authenticated) {
      try {
        const reply = await this.ws.request('place_order', { order: request });
        placed = reply.order as Order;
      } catch (e) {
        if (e instanceof WsRequestError && (e.code === 'disconnected' || e.code === 'not_connected' || e.code === 'timeout')) {
          placed = await this.api.placeOrder(request); // idempotent by client_order_id
        } else {
          throw e;
        }
      }
    } else {
      placed = await this.api.placeOrder(request);
    }
    this.refreshAccount(0);
    return placed;
  }

  async cancelOrder(id: string): Promise<Order> {
    let order: Order;
    if (this.ws.state === 'live' && this.ws.authenticated) {
      order = (await this.ws.request('cancel_order', { order_id: id })).order as Order;
    } else {
      order = await this.api.cancelOrder(id);
    }
    this.refreshAccount(0);
    return order;
  }

  async amendOrder(id: string, change: { price?: string; quantity?: string }): Promise<Order> {
    const order = await this.api.amendOrder(id, change);
    this.refreshAccount(0);
    return order;
  }
}

export function clientOrderId(): string {
  const bytes = new Uint8Array(9);
  crypto.getRandomValues(bytes);
  return 'web-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** The book's top for the ticket signal, cheaply compared. */
export function syncTop(t: Terminal): void {
  const book = t.book;
  const bid = book?.ready ? book.bestBid() : null;
  const ask = book?.ready ? book.bestAsk() : null;
  const cur = t.top.value;
  if (cur.bid !== bid || cur.ask !== ask) t.top.value = { bid, ask };
}
