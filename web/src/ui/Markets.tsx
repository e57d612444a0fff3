import { display, groupThousands } from '../decimal';
import type { Terminal } from '../terminal';

/** The market list: last price and 24-hour change; choosing one switches the screen. */
export function Markets({ t }: { t: Terminal }) {
  const list = t.instruments.value;
  const tickers = t.tickers.value;
  const current = t.symbol.value;
  return (
    <nav class="panel markets" aria-labelledby="markets-title">
      <header class="panel-head">
        <h2 id="markets-title">Markets</h2>
      </header>
      <ul data-testid="markets">
        {list.map((i) => {
          const tk = tickers[i.symbol];
          const change = tk?.change ?? null;
          const dir = change === null || /^-?0(\.0+)?$/.test(change) ? '' : change.startsWith('-') ? 'down' : 'up';
          return (
            <li>
              <button type="button" class="market" aria-current={i.symbol === current ? 'true' : undefined}
                data-symbol={i.symbol} onClick={() => t.select(i.symbol)}>
                <span class="sym">{i.base}<span class="muted">/{i.quote}</span></span>
                <span class="num last">{tk?.last ? display(tk.last, i.tick_size) : '—'}</span>
                <span class={`num chg ${dir}`} aria-label="24 hour change">
                  {change === null ? '—' : `${dir === 'up' ? '+' : ''}${groupThousands(change)}%`}
                </span>
              </button>
            </li>
          );
        })}
      </ul>
    </nav>
  );
}
