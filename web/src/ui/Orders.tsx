import { useState } from 'preact/hooks';
import { ApiError } from '../api';
import { checkPrice, checkQuantity } from '../ticket';
import type { Terminal } from '../terminal';
import type { Instrument, Order } from '../types';
import { WsRequestError } from '../ws';
import { amount, price, size, timeOf, words } from './format';

type Tab = 'open' | 'history' | 'fills';

export function AccountTabs({ t, onLogin }: { t: Terminal; onLogin: () => void }) {
  const [tab, setTab] = useState<Tab>('open');
  const session = t.session.value;
  const open = t.openOrders.value;
  const tabs: Array<[Tab, string]> = [
    ['open', `Open orders (${open.length})`],
    ['history', 'Order history'],
    ['fills', 'Fills'],
  ];
  const onKey = (e: KeyboardEvent) => {
    const i = tabs.findIndex(([k]) => k === tab);
    let next = -1;
    if (e.key === 'ArrowRight') next = (i + 1) % tabs.length;
    if (e.key === 'ArrowLeft') next = (i + tabs.length - 1) % tabs.length;
    if (next >= 0) {
      e.preventDefault();
      setTab(tabs[next][0]);
      document.getElementById(`tab-${tabs[next][0]}`)?.focus();
    }
  };
  return (
    <section class="panel account" aria-label="Your orders and fills">
      <div class="tabs" role="tablist" aria-label="Account" onKeyDown={onKey}>
        {tabs.map(([k, name]) => (
          <button type="button" role="tab" id={`tab-${k}`} aria-selected={tab === k} aria-controls={`tabpanel-${k}`}
            tabIndex={tab === k ? 0 : -1} onClick={() => setTab(k)}>{name}</button>
        ))}
      </div>
      <div class="scroll" role="tabpanel" id={`tabpanel-${tab}`} aria-labelledby={`tab-${tab}`}>
        {!session ? (
          <p class="empty-note">
            <button type="button" class="link" onClick={onLogin}>Log in</button> to see your orders.
          </p>
        ) : tab === 'open' ? (
          <OpenOrders t={t} />
        ) : tab === 'history' ? (
          <History t={t} />
        ) : (
          <Fills t={t} />
        )}
      </div>
    </section>
  );
}

function useInstruments(t: Terminal): Record<string, Instrument> {
  const out: Record<string, Instrument> = {};
  for (const i of t.instruments.value) out[i.symbol] = i;
  return out;
}

function OpenOrders({ t }: { t: Terminal }) {
  const orders = t.openOrders.value;
  const insts = useInstruments(t);
  const [editing, setEditing] = useState<string | null>(null);
  if (orders.length === 0) return <p class="empty-note">No open orders.</p>;
  return (
    <table data-testid="open-orders">
      <thead>
        <tr>
          <th scope="col">Time</th><th scope="col">Market</th><th scope="col">Side</th><th scope="col">Type</th>
          <th scope="col" class="r">Price</th><th scope="col" class="r">Quantity</th><th scope="col" class="r">Filled</th>
          <th scope="col">Status</th><th scope="col"><span class="sr-only">Actions</span></th>
        </tr>
      </thead>
      <tbody>
        {orders.map((o) => editing === o.id
          ? <AmendRow key={o.id} t={t} order={o} inst={insts[o.symbol]} done={() => setEditing(null)} />
          : <OpenRow key={o.id} t={t} order={o} inst={insts[o.symbol]} edit={() => setEditing(o.id)} />)}
      </tbody>
    </table>
  );
}

function errorText(e: unknown): string {
  return e instanceof ApiError || e instanceof WsRequestError ? e.message : String(e);
}

function OpenRow({ t, order: o, inst, edit }: { t: Terminal; order: Order; inst?: Instrument; edit: () => void }) {
  const [busy, setBusy] = useState(false);
  const cancel = async () => {
    setBusy(true);
    try {
      await t.cancelOrder(o.id);
      t.say('info', `Order ${o.id} cancelled`);
    } catch (e) {
      t.say('error', `Cancel failed: ${errorText(e)}`);
      setBusy(false);
    }
  };
  const amendable = o.type === 'limit' || o.type === 'stop_limit';
  return (
    <tr data-order-id={o.id} class={o.side}>
      <td class="num">{timeOf(o.created_time)}</td>
      <td>{o.symbol}</td>
      <td class={`side-text ${o.side}`}>{o.side}</td>
      <td>{words(o.type)}{o.post_only ? ' · post' : ''}</td>
      <td class="num r" data-field="price">{price(o.price, inst)}{o.stop_price ? ` (stop ${price(o.stop_price, inst)})` : ''}</td>
      <td class="num r" data-field="quantity">{size(o.leaves, inst)}</td>
      <td class="num r">{size(o.filled_quantity, inst)}</td>
      <td>{words(o.status)}</td>
      <td class="actions">
        {amendable && <button type="button" class="ghost" onClick={edit} disabled={busy} aria-label={`Amend order ${o.id}`}>Amend</button>}
        <button type="button" class="ghost danger" onClick={cancel} disabled={busy} aria-label={`Cancel order ${o.id}`}>Cancel</button>
      </td>
    </tr>
  );
}

function AmendRow({ t, order: o, inst, done }: { t: Terminal; order: Order; inst?: Instrument; done: () => void }) {
  const [p, setP] = useState(o.price ?? '');
  const [q, setQ] = useState(o.leaves);
  const [err, setErr] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const save = async (e: Event) => {
    e.preventDefault();
    if (!inst) return;
    const problem = checkPrice(p, inst) ?? checkQuantity(q, inst);
    if (problem) {
      setErr(problem);
      return;
    }
    const change: { price?: string; quantity?: string } = {};
    if (p.trim() !== o.price) change.price = p.trim();
    if (q.trim() !== o.leaves) change.quantity = q.trim();
    if (!change.price && !change.quantity) {
      done();
      return;
    }
    setBusy(true);
    try {
      await t.amendOrder(o.id, change);
      t.say('info', `Order ${o.id} amended`);
      done();
    } catch (e2) {
      setErr(errorText(e2));
      setBusy(false);
    }
  };
  const formId = `amend-${o.id}`;
  return (
    <tr data-order-id={o.id} class="editing" onKeyDown={(e) => e.key === 'Escape' && done()}>
      <td class="num">{timeOf(o.created_time)}</td>
      <td>{o.symbol}</td>
      <td class={`side-text ${o.side}`}>{o.side}</td>
      <td>{words(o.type)}</td>
      <td class="r">
        <form id={formId} onSubmit={save} />
        <label class="sr-only" for={`${formId}-price`}>New price</label>
        <input form={formId} id={`${formId}-price`} class="cell-input" inputMode="decimal" value={p} autoFocus
          onInput={(e) => setP((e.target as HTMLInputElement).value)} />
      </td>
      <td class="r">
        <label class="sr-only" for={`${formId}-quantity`}>New quantity</label>
        <input form={formId} id={`${formId}-quantity`} class="cell-input" inputMode="decimal" value={q}
          onInput={(e) => setQ((e.target as HTMLInputElement).value)} />
      </td>
      <td colSpan={2} class="field-error" role="alert">{err ?? ''}</td>
      <td class="actions">
        <button type="submit" form={formId} disabled={busy}>Save</button>
        <button type="button" class="ghost" onClick={done}>Back</button>
      </td>
    </tr>
  );
}

function History({ t }: { t: Terminal }) {
  const orders = t.orderHistory.value;
  const insts = useInstruments(t);
  if (orders.length === 0) return <p class="empty-note">No orders yet.</p>;
  return (
    <table data-testid="order-history">
      <thead>
        <tr>
          <th scope="col">Time</th><th scope="col">Market</th><th scope="col">Side</th><th scope="col">Type</th>
          <th scope="col" class="r">Price</th><th scope="col" class="r">Quantity</th><th scope="col" class="r">Filled</th>
          <th scope="col" class="r">Avg price</th><th scope="col">Status</th>
        </tr>
      </thead>
      <tbody>
        {orders.map((o) => (
          <tr key={o.id} data-order-id={o.id}>
            <td class="num">{timeOf(o.created_time)}</td>
            <td>{o.symbol}</td>
            <td class={`side-text ${o.side}`}>{o.side}</td>
            <td>{words(o.type)} · {o.time_in_force.toUpperCase()}</td>
            <td class="num r">{o.price ? price(o.price, insts[o.symbol]) : 'market'}</td>
            <td class="num r">{o.quantity ? size(o.quantity, insts[o.symbol]) : o.quote_quantity ? `${amount(o.quote_quantity)} ${insts[o.symbol]?.quote ?? ''}` : '—'}</td>
            <td class="num r">{size(o.filled_quantity, insts[o.symbol])}</td>
            <td class="num r">{o.average_price ? price(o.average_price, insts[o.symbol]) : '—'}</td>
            <td>{words(o.status)}{o.reason ? ` (${words(o.reason)})` : ''}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Fills({ t }: { t: Terminal }) {
  const fills = t.fills.value;
  const insts = useInstruments(t);
  if (fills.length === 0) return <p class="empty-note">No fills yet.</p>;
  return (
    <table data-testid="fills">
      <thead>
        <tr>
          <th scope="col">Time</th><th scope="col">Market</th><th scope="col">Side</th>
          <th scope="col" class="r">Price</th><th scope="col" class="r">Quantity</th><th scope="col" class="r">Fee</th>
          <th scope="col">Liquidity</th><th scope="col">Order</th>
        </tr>
      </thead>
      <tbody>
        {fills.map((f) => (
          <tr key={`${f.trade_id}-${f.order_id}`}>
            <td class="num">{timeOf(f.time)}</td>
            <td>{f.symbol}</td>
            <td class={`side-text ${f.side}`}>{f.side}</td>
            <td class="num r">{price(f.price, insts[f.symbol])}</td>
            <td class="num r">{size(f.quantity, insts[f.symbol])}</td>
            <td class="num r">{amount(f.fee)} {f.fee_asset}</td>
            <td>{f.liquidity}</td>
            <td class="num">{f.order_id}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
