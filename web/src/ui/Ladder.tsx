import { useEffect, useRef } from 'preact/hooks';
import type { Level } from '../book';
import { display } from '../decimal';
import { perf } from '../perf';
import { syncTop, type Terminal } from '../terminal';

const ROWS = 30;
const ROW_HEIGHT = 19; // px, as in styles.css (.lvl)

interface Row {
  el: HTMLElement;
  price: HTMLElement;
  size: HTMLElement;
  total: HTMLElement;
  bar: HTMLElement;
  key: string;
}

function makeRow(side: 'bid' | 'ask'): Row {
  const el = document.createElement('div');
  el.className = `lvl ${side}`;
  el.setAttribute('role', 'row');
  const bar = document.createElement('span');
  bar.className = 'bar';
  bar.setAttribute('aria-hidden', 'true');
  const cell = (cls: string) => {
    const c = document.createElement('span');
    c.className = cls;
    c.setAttribute('role', 'cell');
    el.appendChild(c);
    return c;
  };
  el.appendChild(bar);
  const price = cell('price num');
  const size = cell('size num');
  const total = cell('total num');
  return { el, price, size, total, bar, key: '' };
}

/**
 * The order book ladder, drawn imperatively: a fixed set of rows whose text is rewritten in
 * the animation frame after book frames arrived (no allocation per update beyond the level
 * strings). Clicking a level puts its price into the ticket.
 */
export function Ladder({ t, onPick }: { t: Terminal; onPick: (price: string) => void }) {
  const asksBox = useRef<HTMLDivElement>(null);
  const bidsBox = useRef<HTMLDivElement>(null);
  const spreadEl = useRef<HTMLDivElement>(null);
  const root = useRef<HTMLElement>(null);
  const inst = t.instrument.value;
  const pick = useRef(onPick);
  pick.current = onPick;

  useEffect(() => {
    if (!inst) return;
    const asks: Row[] = [];
    const bids: Row[] = [];
    asksBox.current!.replaceChildren();
    bidsBox.current!.replaceChildren();
    for (let i = 0; i < ROWS; i++) {
      const a = makeRow('ask');
      asks.push(a);
      // Asks: best at the bottom, next to the spread.
      asksBox.current!.prepend(a.el);
      const b = makeRow('bid');
      bids.push(b);
      bidsBox.current!.appendChild(b.el);
    }
    const lastEl = document.createElement('span');
    const spreadText = document.createElement('span');
    spreadEl.current!.replaceChildren(lastEl, spreadText);
    // Only whole rows: as many as the panel's height holds, on each side.
    const fit = (box: HTMLElement, rows: Row[]) => {
      const n = Math.max(1, Math.floor(box.clientHeight / ROW_HEIGHT));
      rows.forEach((r, i) => (r.el.hidden = i >= n));
    };
    const resize = new ResizeObserver(() => {
      fit(asksBox.current!, asks);
      fit(bidsBox.current!, bids);
    });
    resize.observe(asksBox.current!);
    resize.observe(bidsBox.current!);
    const fmtP = (s: string) => display(s, inst.tick_size);
    const fmtQ = (s: string) => display(s, inst.lot_size);
    const fill = (rows: Row[], levels: Level[], max: number) => {
      for (let i = 0; i < rows.length; i++) {
        const r = rows[i];
        const l = levels[i];
        const key = l ? `${l.price}|${l.quantity}|${l.total}|${max}` : '';
        if (key === r.key) continue;
        r.key = key;
        if (!l) {
          r.price.textContent = r.size.textContent = r.total.textContent = '';
          r.bar.style.transform = 'scaleX(0)';
          r.el.dataset.price = '';
          r.el.classList.add('empty');
          continue;
        }
        r.el.classList.remove('empty');
        r.el.dataset.price = l.price;
        r.price.textContent = fmtP(l.price);
        r.size.textContent = fmtQ(l.quantity);
        r.total.textContent = fmtQ(l.total);
        // Drawing only: the bar's length as a fraction of the deepest shown total.
        r.bar.style.transform = `scaleX(${max > 0 ? Number(l.total) / max : 0})`;
      }
    };
    let drawn = -2;
    const render = () => {
      const book = t.book;
      const el = root.current;
      if (!book || !el) return;
      if (!book.ready) {
        if (drawn !== -1) {
          fill(asks, [], 0);
          fill(bids, [], 0);
          lastEl.textContent = '';
          spreadText.textContent = 'Loading book…';
          el.dataset.ready = 'false';
          drawn = -1;
        }
        syncTop(t);
        perf.rendered(performance.now());
        return;
      }
      if (book.version !== drawn) {
        drawn = book.version;
        const a = book.levels('asks', ROWS);
        const b = book.levels('bids', ROWS);
        const max = Math.max(a.length ? Number(a[a.length - 1].total) : 0, b.length ? Number(b[b.length - 1].total) : 0);
        fill(asks, a, max);
        fill(bids, b, max);
        const spread = book.spread();
        const last = t.tickers.value[inst.symbol]?.last ?? null;
        const lastSide = t.tape[0]?.side ?? '';
        lastEl.textContent = last ? fmtP(last) : '';
        lastEl.className = `last ${lastSide}`;
        spreadText.textContent = spread === null
          ? (a.length || b.length ? 'One-sided book' : 'Empty book')
          : `Spread ${fmtP(spread)}`;
        el.dataset.ready = 'true';
        el.dataset.u = String(book.u);
        el.dataset.bids = String(book.depthCount('bids'));
        el.dataset.asks = String(book.depthCount('asks'));
        syncTop(t);
      }
      perf.rendered(performance.now());
    };
    const off = t.onBook(render);
    render();
    const click = (e: Event) => {
      const row = (e.target as HTMLElement).closest<HTMLElement>('.lvl');
      const price = row?.dataset.price;
      if (price) pick.current(price);
    };
    root.current!.addEventListener('click', click);
    const node = root.current!;
    return () => {
      off();
      resize.disconnect();
      node.removeEventListener('click', click);
    };
  }, [inst?.symbol]);

  return (
    <section class="panel ladder" aria-labelledby="book-title" ref={root} data-testid="order-book" data-ready="false">
      <header class="panel-head">
        <h2 id="book-title">Order book</h2>
        {t.conn.value !== 'live' && <span class="stale-note" role="status">Not live: may be stale</span>}
      </header>
      <div class="lvl head" role="row" aria-hidden="true">
        <span class="price">Price{inst ? ` (${inst.quote})` : ''}</span>
        <span class="size">Size{inst ? ` (${inst.base})` : ''}</span>
        <span class="total">Total</span>
      </div>
      <div class="side asks" ref={asksBox} role="rowgroup" aria-label="Asks" data-testid="asks" />
      <div class="spread num" ref={spreadEl} aria-live="off" data-testid="spread" />
      <div class="side bids" ref={bidsBox} role="rowgroup" aria-label="Bids" data-testid="bids" />
    </section>
  );
}
