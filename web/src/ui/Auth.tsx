import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api';
import type { Terminal } from '../terminal';
import { Dialog } from './Dialog';

export type AuthMode = 'login' | 'signup';

export function AuthDialog({ t, mode, setMode, onClose, onSignedUp }: {
  t: Terminal; mode: AuthMode; setMode: (m: AuthMode) => void; onClose: () => void; onSignedUp: () => void;
}) {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [totp, setTotp] = useState('');
  const [needCode, setNeedCode] = useState(false);
  const [err, setErr] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const codeRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    if (needCode) codeRef.current?.focus();
  }, [needCode]);

  const submit = async (e: Event) => {
    e.preventDefault();
    setErr(null);
    if (mode === 'signup' && password.length < 12) {
      setErr('Use a password of at least 12 characters');
      return;
    }
    setBusy(true);
    try {
      if (mode === 'signup') await t.api.register(username, password);
      const token = await t.api.login(username, password, needCode ? totp.trim() : undefined);
      t.signIn(username, token.access_token, token.expires_in);
      onClose();
      if (mode === 'signup') onSignedUp();
      else t.say('info', `Logged in as ${username}`);
    } catch (e2) {
      if (e2 instanceof ApiError && e2.code === 'mfa_required') {
        setNeedCode(true);
        setErr('Enter the 6-digit code from your authenticator app');
      } else {
        setErr(e2 instanceof ApiError ? e2.message : String(e2));
      }
    } finally {
      setBusy(false);
    }
  };

  const title = mode === 'signup' ? 'Create an account' : 'Log in';
  return (
    <Dialog id="auth" title={title} onClose={onClose}>
      <form onSubmit={submit} class="stack" data-testid={`${mode}-form`}>
        <label for="auth-username">Username</label>
        <input id="auth-username" autoComplete="username" required value={username} autoFocus
          onInput={(e) => setUsername((e.target as HTMLInputElement).value)} />
        <label for="auth-password">Password</label>
        <input id="auth-password" type="password" required value={password}
          autoComplete={mode === 'signup' ? 'new-password' : 'current-password'}
          aria-describedby={mode === 'signup' ? 'auth-password-hint' : undefined}
          onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />
        {mode === 'signup' && <p class="hint" id="auth-password-hint">At least 12 characters; a passphrase is best.</p>}
        {needCode && (
          <>
            <label for="auth-totp">One-time code</label>
            <input id="auth-totp" ref={codeRef} inputMode="numeric" autoComplete="one-time-code" pattern="[0-9 ]*"
              maxLength={7} value={totp} onInput={(e) => setTotp((e.target as HTMLInputElement).value)} />
          </>
        )}
        <p class="field-error" role="alert">{err ?? ''}</p>
        <button type="submit" disabled={busy}>{busy ? 'Please wait…' : mode === 'signup' ? 'Sign up' : 'Log in'}</button>
        <p class="muted small">
          {mode === 'signup' ? 'Have an account? ' : 'New here? '}
          <button type="button" class="link" onClick={() => { setMode(mode === 'signup' ? 'login' : 'signup'); setErr(null); setNeedCode(false); }}>
            {mode === 'signup' ? 'Log in' : 'Create an account'}
          </button>
        </p>
      </form>
    </Dialog>
  );
}

/** Two-factor enrolment: the otpauth URI as a QR code (and as text), then a code to prove it. */
export function MfaDialog({ t, onClose, intro }: { t: Terminal; onClose: () => void; intro?: boolean }) {
  const [setup, setSetup] = useState<{ secret: string; uri: string; svg: string } | null>(null);
  const [code, setCode] = useState('');
  const [err, setErr] = useState<string | null>(null);
  const [done, setDone] = useState(false);
  const [busy, setBusy] = useState(false);
  const [started, setStarted] = useState(!intro);

  useEffect(() => {
    if (!started) return;
    let cancelled = false;
    t.api.mfaSetup().then(async (s) => {
      // Loaded on demand: the first screen does not need the QR encoder.
      const { default: QRCode } = await import('qrcode');
      const svg = await QRCode.toString(s.otpauth_uri, { type: 'svg', margin: 2, errorCorrectionLevel: 'M', color: { dark: '#000000', light: '#ffffff' } });
      if (!cancelled) setSetup({ secret: s.secret, uri: s.otpauth_uri, svg });
    }).catch((e) => {
      if (cancelled) return;
      if (e instanceof ApiError && e.code === 'mfa_already_enabled') setDone(true);
      else setErr(e instanceof ApiError ? e.message : String(e));
    });
    return () => {
      cancelled = true;
    };
  }, [started]);

  const enable = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setErr(null);
    try {
      await t.api.mfaEnable(code.trim());
      setDone(true);
      t.say('info', 'Two-factor authentication is on');
    } catch (e2) {
      setErr(e2 instanceof ApiError ? e2.message : String(e2));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Dialog id="mfa" title="Two-factor authentication" onClose={onClose}>
      {done ? (
        <div class="stack">
          <p role="status" data-testid="mfa-done">Two-factor authentication is on. Logging in will ask for a code from your app.</p>
          <button type="button" onClick={onClose}>Done</button>
        </div>
      ) : !started ? (
        <div class="stack">
          <p>Your account is ready. Protect it with a one-time code from an authenticator app?</p>
          <div class="row">
            <button type="button" onClick={() => setStarted(true)}>Set up two-factor</button>
            <button type="button" class="ghost" onClick={onClose}>Not now</button>
          </div>
        </div>
      ) : (
        <form class="stack" onSubmit={enable} data-testid="mfa-form">
          <p>Scan this code with your authenticator app, then enter the 6-digit code it shows.</p>
          {setup ? (
            <div class="qr" role="img" aria-label="QR code of the authenticator secret" data-testid="mfa-qr"
              // The SVG is made here by the qrcode library from the venue's otpauth URI.
              dangerouslySetInnerHTML={{ __html: setup.svg }} />
          ) : (
            <p class="muted">Preparing…</p>
          )}
          {setup && (
            <p class="small">Can't scan it? Enter this key: <code data-testid="mfa-secret" class="secret">{setup.secret.replace(/(.{4})/g, '$1 ').trim()}</code></p>
          )}
          <label for="mfa-code">Code from the app</label>
          <input id="mfa-code" inputMode="numeric" autoComplete="one-time-code" maxLength={7} value={code}
            onInput={(e) => setCode((e.target as HTMLInputElement).value)} />
          <p class="field-error" role="alert">{err ?? ''}</p>
          <button type="submit" disabled={busy || !setup}>Turn on</button>
        </form>
      )}
    </Dialog>
  );
}
