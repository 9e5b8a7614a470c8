import { useState, type FormEvent } from 'react';
import { ApiError } from '../api';

export function SignIn({
  onSignIn,
  notice,
}: {
  onSignIn: (apiKey: string) => Promise<void>;
  notice?: string;
}): React.JSX.Element {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = (event: FormEvent): void => {
    event.preventDefault();
    if (!key.trim()) {
      setError('Enter an admin API key.');
      return;
    }
    setBusy(true);
    setError(null);
    onSignIn(key.trim())
      .catch((err: unknown) => {
        if (err instanceof ApiError && err.status === 401) setError('That key is unknown or revoked.');
        else if (err instanceof ApiError && err.status === 403) setError('That key is not an admin key.');
        else setError(err instanceof Error ? err.message : String(err));
      })
      .finally(() => setBusy(false));
  };

  return (
    <main className="center">
      <form className="card signin" onSubmit={submit} aria-labelledby="signin-title" noValidate>
        <h1 id="signin-title">
          gpumesh <span>admin</span>
        </h1>
        <p className="muted">
          Sign in with an admin API key. It is exchanged for a session cookie and not stored here.
        </p>
        {notice && <p className="notice">{notice}</p>}
        <label htmlFor="api-key">Admin API key</label>
        <input
          id="api-key"
          name="apiKey"
          type="password"
          autoComplete="off"
          spellCheck={false}
          placeholder="gmk_…"
          value={key}
          onChange={(e) => setKey(e.target.value)}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? 'signin-error' : undefined}
          autoFocus
        />
        {error && (
          <p id="signin-error" className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p className="muted small">
          <code>npm start</code> prints an admin key for local use.
        </p>
      </form>
    </main>
  );
}
