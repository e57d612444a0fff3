import type { Signal } from '@preact/signals';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError } from '../api';
import { display, groupThousands } from '../decimal';
import type { Terminal } from '../terminal';
import {
  defaultTicket,
  maxBuyQuantity,
  maxSellQuantity,
  TIFS_FOR,
  type TicketField,
  type TicketInput,
  trimZeros,
  validateTicket,
} from '../ticket';
import type { OrderType, Side, TimeInForce } from '../types';
import { WsRequestError } from '../ws';

const TYPES: Array<[OrderType, string]> = [
  ['limit', 'Limit'],
  ['market', 'Market'],
  ['stop_limit', 'Stop limit'],
  ['stop_market', 'Stop market'],
];
const TIF_NAMES: Record<TimeInForce, string> = {
  gtc: 'Good till cancelled (GTC)',
  ioc: 'Immediate or cancel (IOC)',
  fok: 'Fill or kill (FOK)',
  gtd: 'Good till date (GTD)',
};

function localInput(ms: number): string {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

export function Ticket({ t, picked, onLogin }: { t: Terminal; picked: Signal<string | null>; onLogin: () => void }) {
  const inst = t.instrument.value;
  const session = t.session.value;
  const balances = t.balances.value;
  const top = t.top.value;
  const lastPrice = inst ? t.tickers.value[inst.symbol]?.last ?? null : null;
  const [input, setInput] = useState<TicketInput>(defaultTicket);
  const [touched, setTouched] = useState<Set<TicketField>>(new Set());
  const [tried, setTried] = useState(false);
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<{ kind: 'ok' | 'error'; text: string; id?: string; status?: string } | null>(null);

  // A price clicked on the ladder.
  useEffect(() => {
    const p = picked.value;
    if (p !== null) {
      setInput((i) => ({ ...i, price: p, type: i.type === 'market' ? 'limit' : i.type === 'stop_market' ? 'stop_limit' : i.type }));
      picked.value = null;
    }
  }, [picked.value]);

  useEffect(() => {
    setInput(defaultTicket());
    setTouched(new Set());
    setTried(false);
    setResult(null);
  }, [inst?.symbol]);

  const check = useMemo(() => inst && validateTicket(input, {
    instrument: inst,
    balances: session ? balances : null,
    lastPrice,
    bestBid: top.bid,
    bestAsk: top.ask,
    now: Date.now(),
  }), [input, inst, balances, session, top, lastPrice]);

  if (!inst || !check) {
    return <section class="panel ticket" aria-label="Order ticket"><p class="muted">Loading markets…</p></section>;
  }

  const set = <K extends keyof TicketInput>(k: K, v: TicketInput[K]) => {
    setResult(null);
    setInput((i) => {
      const next = { ...i, [k]: v };
      if (k === 'type') {
        const tifs = TIFS_FOR[v as OrderType];
        if (!tifs.includes(next.tif)) next.tif = tifs[0];
        if (v === 'market' || v === 'stop_market') next.postOnly = false;
      }
      if (k === 'amountIn' && v === 'quote') next.tif = 'ioc';
      return next;
    });
  };
  const touch = (f: TicketField) => setTouched((s) => (s.has(f) ? s : new Set(s).add(f)));
  // A field's error shows once something was typed in it (as it is typed, not on blur: an error
  // appearing on blur would move the submit button from under the pointer), or after a submit.
  const error = (f: TicketField) => (tried || touched.has(f) ? check.errors[f] : undefined);

  const isMarket = input.type === 'market' || input.type === 'stop_market';
  const byQuote = isMarket && input.side === 'buy' && input.amountIn === 'quote';
  const payAsset = input.side === 'buy' ? inst.quote : inst.base;
  const available = balances?.[payAsset]?.available ?? null;

  const max = () => {
    if (!available) return;
    if (input.side === 'sell') {
      const q = maxSellQuantity(available, inst);
      if (q) set('quantity', q);
    } else if (byQuote) {
      set('quoteQuantity', available);
    } else {
      const price = input.type === 'limit' || input.type === 'stop_limit' ? input.price : top.ask ?? '';
      const q = price ? maxBuyQuantity(available, price, inst) : null;
      if (q) set('quantity', q);
    }
  };

  const submit = async (e: Event) => {
    e.preventDefault();
    setTried(true);
    if (!session) {
      onLogin();
      return;
    }
    if (!check.order) {
      const first = Object.keys(check.errors)[0];
      const el = document.getElementById(`ticket-${first}`);
      el?.focus();
      return;
    }
    setBusy(true);
    setResult(null);
    try {
      const order = await t.placeOrder(check.order);
      const filled = order.filled_quantity && !/^0(\.0*)?$/.test(order.filled_quantity);
      const avg = order.average_price ? ` at ${display(order.average_price, inst.tick_size)}` : '';
      setResult({
        kind: order.status === 'rejected' ? 'error' : 'ok',
        id: order.id,
        status: order.status,
        text: `Order ${order.id} ${order.status.replace('_', ' ')}${filled ? `: ${trimZeros(order.filled_quantity)} ${inst.base}${avg}` : ''}${order.reason ? ` (${order.reason.replace(/_/g, ' ')})` : ''}`,
      });
      setTried(false);
      setTouched(new Set());
    } catch (err) {
      const msg = err instanceof ApiError || err instanceof WsRequestError ? err.message : String(err);
      setResult({ kind: 'error', text: `Rejected: ${msg}` });
    } finally {
      setBusy(false);
    }
  };

  const described = (f: TicketField, hint?: string) => {
    const ids = [hint, error(f) ? `ticket-${f}-error` : undefined].filter(Boolean).join(' ');
    return ids || undefined;
  };
  const Err = ({ f }: { f: TicketField }) =>
    error(f) ? <p class="field-error" id={`ticket-${f}-error`}>{error(f)}</p> : null;

  return (
    <section class="panel ticket" aria-labelledby="ticket-title">
      <header class="panel-head">
        <h2 id="ticket-title">Place order</h2>
        <span class="muted">{inst.symbol}</span>
      </header>
      <form onSubmit={submit} noValidate data-testid="ticket">
        <fieldset class="sides">
          <legend class="sr-only">Side</legend>
          {(['buy', 'sell'] as Side[]).map((s) => (
            <label class={`side-${s}`}>
              <input type="radio" name="side" value={s} checked={input.side === s} onChange={() => set('side', s)} />
              <span>{s === 'buy' ? 'Buy' : 'Sell'}</span>
            </label>
          ))}
        </fieldset>

        <label for="ticket-type">Order type</label>
        <select id="ticket-type" value={input.type} onChange={(e) => set('type', (e.target as HTMLSelectElement).value as OrderType)}>
          {TYPES.map(([v, name]) => <option value={v}>{name}</option>)}
        </select>

        {(input.type === 'stop_limit' || input.type === 'stop_market') && (
          <>
            <label for="ticket-stopPrice">Stop price ({inst.quote})</label>
            <input id="ticket-stopPrice" inputMode="decimal" autoComplete="off" value={input.stopPrice}
              aria-invalid={!!error('stopPrice')} aria-describedby={described('stopPrice', 'ticket-tick')}
              onInput={(e) => { set('stopPrice', (e.target as HTMLInputElement).value); touch('stopPrice'); }} />
            <Err f="stopPrice" />
          </>
        )}

        {(input.type === 'limit' || input.type === 'stop_limit') && (
          <>
            <label for="ticket-price">Limit price ({inst.quote})</label>
            <input id="ticket-price" inputMode="decimal" autoComplete="off" value={input.price}
              aria-invalid={!!error('price')} aria-describedby={described('price', 'ticket-tick')}
              onInput={(e) => { set('price', (e.target as HTMLInputElement).value); touch('price'); }} />
            <Err f="price" />
          </>
        )}
        <p class="hint" id="ticket-tick">Tick {inst.tick_size} {inst.quote}</p>

        {isMarket && input.side === 'buy' && (
          <fieldset class="seg small">
            <legend>Size in</legend>
            {(['base', 'quote'] as const).map((a) => (
              <label>
                <input type="radio" name="amount-in" checked={input.amountIn === a} onChange={() => set('amountIn', a)} />
                <span>{a === 'base' ? inst.base : inst.quote}</span>
              </label>
            ))}
          </fieldset>
        )}

        {byQuote ? (
          <>
            <label for="ticket-quoteQuantity">Amount ({inst.quote})</label>
            <div class="with-button">
              <input id="ticket-quoteQuantity" inputMode="decimal" autoComplete="off" value={input.quoteQuantity}
                aria-invalid={!!error('quoteQuantity')} aria-describedby={described('quoteQuantity')}
                onInput={(e) => { set('quoteQuantity', (e.target as HTMLInputElement).value); touch('quoteQuantity'); }} />
              <button type="button" class="ghost" onClick={max} disabled={!available}>Max</button>
            </div>
            <Err f="quoteQuantity" />
          </>
        ) : (
          <>
            <label for="ticket-quantity">Quantity ({inst.base})</label>
            <div class="with-button">
              <input id="ticket-quantity" inputMode="decimal" autoComplete="off" value={input.quantity}
                aria-invalid={!!error('quantity')} aria-describedby={described('quantity', 'ticket-lot')}
                onInput={(e) => { set('quantity', (e.target as HTMLInputElement).value); touch('quantity'); }} />
              <button type="button" class="ghost" onClick={max} disabled={!available}>Max</button>
            </div>
            <Err f="quantity" />
            <p class="hint" id="ticket-lot">Lot {inst.lot_size} · min {inst.min_quantity} · max {groupThousands(inst.max_quantity)} {inst.base}</p>
          </>
        )}

        <label for="ticket-tif">Time in force</label>
        <select id="ticket-tif" value={input.tif} aria-invalid={!!error('tif')} aria-describedby={described('tif')}
          onChange={(e) => set('tif', (e.target as HTMLSelectElement).value as TimeInForce)}>
          {TIFS_FOR[input.type].map((v) => <option value={v} disabled={byQuote && v !== 'ioc'}>{TIF_NAMES[v]}</option>)}
        </select>
        <Err f="tif" />

        {input.tif === 'gtd' && (
          <>
            <label for="ticket-expireTime">Expires (local time)</label>
            <input id="ticket-expireTime" type="datetime-local" min={localInput(Date.now())}
              value={input.expireTime ? localInput(input.expireTime) : ''}
              aria-invalid={!!error('expireTime')} aria-describedby={described('expireTime')}
              onInput={(e) => {
                const v = (e.target as HTMLInputElement).value;
                set('expireTime', v ? new Date(v).getTime() : null);
                touch('expireTime');
              }} />
            <Err f="expireTime" />
          </>
        )}

        <label class="check">
          <input id="ticket-postOnly" type="checkbox" checked={input.postOnly} disabled={isMarket}
            aria-describedby={described('postOnly')}
            onChange={(e) => { set('postOnly', (e.target as HTMLInputElement).checked); touch('postOnly'); }} />
          Post-only (maker only)
        </label>
        <Err f="postOnly" />

        <dl class="ticket-sums num">
          <div>
            <dt>Available</dt>
            <dd data-testid="ticket-available">
              {session ? (available !== null ? `${groupThousands(trimZeros(available))} ${payAsset}` : '…') : '—'}
            </dd>
          </div>
          <div>
            <dt>{input.side === 'buy' ? 'Cost' : 'Selling'}</dt>
            <dd data-testid="ticket-cost">
              {check.cost ? `${groupThousands(trimZeros(check.cost.amount))} ${check.cost.asset}` : isMarket && input.side === 'buy' && !byQuote ? 'at market' : '—'}
            </dd>
          </div>
          <div>
            <dt>Best bid / ask</dt>
            <dd>{top.bid ? display(top.bid, inst.tick_size) : '—'} / {top.ask ? display(top.ask, inst.tick_size) : '—'}</dd>
          </div>
        </dl>
        {session && (tried || touched.size > 0) && check.errors.balance && (
          <p class="field-error" id="ticket-balance-error" role="alert">{check.errors.balance}</p>
        )}

        <button type="submit" class={`submit ${input.side}`} disabled={busy}>
          {!session ? 'Log in to trade' : busy ? 'Sending…' : `${input.side === 'buy' ? 'Buy' : 'Sell'} ${inst.base}`}
        </button>
        <p class={`result ${result?.kind ?? ''}`} role="status" aria-live="polite" data-testid="ticket-result" data-order-id={result?.id} data-status={result?.status}>{result?.text ?? ''}</p>
      </form>
    </section>
  );
}
