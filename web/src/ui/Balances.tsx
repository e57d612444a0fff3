import { useState } from 'preact/hooks';
import { ApiError } from '../api';
import { parse } from '../decimal';
import type { Terminal } from '../terminal';
import { amount } from './format';

export function Balances({ t, onLogin }: { t: Terminal; onLogin: () => void }) {
  const session = t.session.value;
  const balances = t.balances.value;
  const assets = [...new Set(t.instruments.value.flatMap((i) => [i.base, i.quote]))];
  const [asset, setAsset] = useState('');
  const [value, setValue] = useState('');
  const [busy, setBusy] = useState(false);
  const [msg, setMsg] = useState<{ kind: 'ok' | 'error'; text: string } | null>(null);
  const chosen = asset || t.instrument.value?.quote || assets[0] || '';

  const fund = async (e: Event) => {
    e.preventDefault();
    const d = parse(value);
    if (!d || d.units <= 0n) {
      setMsg({ kind: 'error', text: 'Enter an amount above zero' });
      return;
    }
    setBusy(true);
    setMsg(null);
    try {
      const r = await t.api.faucet(chosen, value.trim());
      setMsg({ kind: 'ok', text: `Added ${amount(r.amount)} ${r.asset}` });
      setValue('');
      t.refreshAccount(0);
    } catch (err) {
      setMsg({ kind: 'error', text: err instanceof ApiError ? err.message : String(err) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="panel balances" aria-labelledby="balances-title">
      <header class="panel-head">
        <h2 id="balances-title">Balances</h2>
      </header>
      {!session ? (
        <p class="empty-note"><button type="button" class="link" onClick={onLogin}>Log in</button> to see balances.</p>
      ) : (
        <>
          <table data-testid="balances">
            <thead>
              <tr><th scope="col">Asset</th><th scope="col" class="r">Available</th><th scope="col" class="r">In orders</th></tr>
            </thead>
            <tbody>
              {assets.map((a) => {
                const b = balances?.[a];
                return (
                  <tr data-asset={a}>
                    <th scope="row">{a}</th>
                    <td class="num r" data-field="available">{b ? amount(b.available) : '…'}</td>
                    <td class="num r" data-field="held">{b ? amount(b.held) : '…'}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          <form class="faucet" onSubmit={fund} aria-labelledby="faucet-title" data-testid="faucet">
            <h3 id="faucet-title">Test funds</h3>
            <div class="row">
              <div>
                <label for="faucet-asset">Asset</label>
                <select id="faucet-asset" value={chosen} onChange={(e) => setAsset((e.target as HTMLSelectElement).value)}>
                  {assets.map((a) => <option value={a}>{a}</option>)}
                </select>
              </div>
              <div class="grow">
                <label for="faucet-amount">Amount</label>
                <input id="faucet-amount" inputMode="decimal" autoComplete="off" value={value}
                  onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
              </div>
              <button type="submit" disabled={busy}>Get funds</button>
            </div>
            <p class={`result ${msg?.kind ?? ''}`} role="status" aria-live="polite">{msg?.text ?? ''}</p>
          </form>
        </>
      )}
    </section>
  );
}
