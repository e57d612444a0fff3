import { effect } from '@preact/signals';
import { render } from 'preact';
import { afterFrame, invalidate } from './frame';
import { perf } from './perf';
import { Terminal } from './terminal';
import { initTheme } from './theme';
import { App } from './ui/App';
import './styles.css';

initTheme();
const terminal = new Terminal();

// For the browser tests and for a curious user's console.
declare global {
  interface Window {
    __rialto: { terminal: Terminal; perf: typeof perf };
  }
}
window.__rialto = { terminal, perf };

// The first screen is usable when the book and the ticket are drawn and the socket is live.
const stopWatching = afterFrame(() => {
  const book = document.querySelector('[data-testid="order-book"]');
  const ticket = document.querySelector('[data-testid="ticket"]');
  if (terminal.conn.value === 'live' && book?.getAttribute('data-ready') === 'true' && ticket) {
    perf.markUsable();
    stopWatching();
  }
});
effect(() => {
  if (terminal.conn.value === 'live') invalidate(() => {});
});
effect(() => {
  document.title = terminal.instrument.value
    ? `${terminal.tickers.value[terminal.symbol.value]?.last ?? ''} ${terminal.symbol.value} · Rialto`.trim()
    : 'Rialto';
});

render(<App t={terminal} />, document.getElementById('app')!);
void terminal.start();
