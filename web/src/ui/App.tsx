import { useSignal } from '@preact/signals';
import { useState } from 'preact/hooks';
import type { Terminal } from '../terminal';
import { AuthDialog, type AuthMode, MfaDialog } from './Auth';
import { Balances } from './Balances';
import { CandleChart } from './CandleChart';
import { DepthChart } from './DepthChart';
import { Header, Notice } from './Header';
import { Ladder } from './Ladder';
import { Markets } from './Markets';
import { AccountTabs } from './Orders';
import { Tape } from './Tape';
import { Ticket } from './Ticket';

export function App({ t }: { t: Terminal }) {
  const [auth, setAuth] = useState<AuthMode | null>(null);
  const [mfa, setMfa] = useState<'intro' | 'direct' | null>(null);
  const picked = useSignal<string | null>(null);
  const login = () => setAuth('login');
  return (
    <>
      <a class="skip" href="#ticket-title">Skip to the order ticket</a>
      <Header t={t} onAuth={setAuth} onMfa={() => setMfa('direct')} />
      <Notice t={t} />
      <main class={`grid${t.conn.value === 'live' ? '' : ' stale'}`}>
        <Markets t={t} />
        <CandleChart t={t} />
        <DepthChart t={t} />
        <Ladder t={t} onPick={(p) => (picked.value = p)} />
        <Tape t={t} />
        <Ticket t={t} picked={picked} onLogin={login} />
        <Balances t={t} onLogin={login} />
        <AccountTabs t={t} onLogin={login} />
      </main>
      {auth && <AuthDialog t={t} mode={auth} setMode={setAuth} onClose={() => setAuth(null)} onSignedUp={() => setMfa('intro')} />}
      {mfa && <MfaDialog t={t} intro={mfa === 'intro'} onClose={() => setMfa(null)} />}
    </>
  );
}
