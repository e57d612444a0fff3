import { useEffect } from 'preact/hooks';
import { display, groupThousands } from '../decimal';
import type { Terminal } from '../terminal';
import { setTheme, theme } from '../theme';
import type { ConnState } from '../ws';

const STATE_TEXT: Record<ConnState, string> = {
  connecting: 'Connecting',
  live: 'Live',
  reconnecting: 'Reconnecting',
  offline: 'Offline',
};

export function Header({ t, onAuth, onMfa }: { t: Terminal; onAuth: (m: 'login' | 'signup') => void; onMfa: () => void }) {
  const inst = t.instrument.value;
  const tk = inst ? t.tickers.value[inst.symbol] : undefined;
  const state = t.conn.value;
  const session = t.session.value;
  const dark = theme.value === 'dark';
  const change = tk?.change ?? null;
  const dir = change === null || /^-?0(\.0+)?$/.test(change) ? '' : change.startsWith('-') ? 'down' : 'up';
  return (
    <header class="top">
      <div class="brand" aria-label="Rialto">
        <svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true"><path d="M2 18 Q12 2 22 18" fill="none" stroke="currentColor" stroke-width="2.5" /><path d="M2 18h20" stroke="currentColor" stroke-width="2.5" /></svg>
        <span>Rialto</span>
      </div>
      {inst && (
        <div class="summary" aria-label={`${inst.symbol} summary`}>
          <strong>{inst.base}/{inst.quote}</strong>
          <span class="num big" data-testid="last-price">{tk?.last ? display(tk.last, inst.tick_size) : '—'}</span>
          <span class={`num chg ${dir}`}>
            24h {change === null ? '—' : `${dir === 'up' ? '+' : ''}${groupThousands(change)}%`}
          </span>
        </div>
      )}
      <div class="spacer" />
      <div class={`conn ${state}`} role="status" aria-live="polite" data-testid="connection" data-state={state}>
        <span class="dot" aria-hidden="true" />
        {STATE_TEXT[state]}
      </div>
      <button type="button" class="ghost" aria-pressed={dark} onClick={() => setTheme(dark ? 'light' : 'dark')}
        title="Switch between light and dark" data-testid="theme-toggle">
        {dark ? '☾ Dark' : '☀ Light'}
      </button>
      {session ? (
        <div class="who">
          <span data-testid="username">{session.username}</span>
          <button type="button" class="ghost" onClick={onMfa}>2FA</button>
          <button type="button" class="ghost" onClick={() => t.signOut()}>Log out</button>
        </div>
      ) : (
        <div class="who">
          <button type="button" class="ghost" onClick={() => onAuth('login')}>Log in</button>
          <button type="button" onClick={() => onAuth('signup')}>Sign up</button>
        </div>
      )}
    </header>
  );
}

export function Notice({ t }: { t: Terminal }) {
  const n = t.notice.value;
  const err = t.loadError.value;
  useEffect(() => {
    if (!n) return;
    const timer = setTimeout(() => {
      if (t.notice.value === n) t.notice.value = null;
    }, n.kind === 'error' ? 10_000 : 5_000);
    return () => clearTimeout(timer);
  }, [n]);
  return (
    <div class="notices" aria-live="polite">
      {err && <p class="notice error" role="alert">{err}</p>}
      {n && (
        <p class={`notice ${n.kind}`} key={n.at} data-testid="notice">
          {n.text}
          <button type="button" class="ghost icon" aria-label="Dismiss" onClick={() => (t.notice.value = null)}>×</button>
        </p>
      )}
    </div>
  );
}
