import { useState, type ReactNode } from 'react';
import { ApiError } from './api';
import type { Load } from './hooks';

export function Loading({ what }: { what: string }): React.JSX.Element {
  return (
    <p className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> Loading {what}…
    </p>
  );
}

export function ErrorBox({ error, retry }: { error: Error; retry?: () => void }): React.JSX.Element {
  const detail = error instanceof ApiError && error.status ? ` (${error.status} ${error.code})` : '';
  return (
    <div className="error" role="alert">
      <strong>Something went wrong{detail}.</strong> {error.message}{' '}
      {retry && (
        <button type="button" className="link" onClick={retry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }): React.JSX.Element {
  return <p className="empty">{children}</p>;
}

/** Renders loading, error (keeping stale data visible) and loaded states of a `useLoad`. */
export function Loaded<T>({
  load,
  what,
  children,
  retry,
}: {
  load: Load<T>;
  what: string;
  retry?: () => void;
  children: (data: T) => ReactNode;
}): React.JSX.Element {
  if (load.status === 'loading') return <Loading what={what} />;
  if (load.status === 'error' && load.data === undefined)
    return <ErrorBox error={load.error} retry={retry} />;
  return (
    <>
      {load.status === 'error' && <ErrorBox error={load.error} retry={retry} />}
      {children(load.data as T)}
    </>
  );
}

export function Stat({
  label,
  value,
  hint,
}: {
  label: string;
  value: ReactNode;
  hint?: string;
}): React.JSX.Element {
  return (
    <div className="stat" title={hint}>
      <div className="stat-value">{value}</div>
      <div className="stat-label">{label}</div>
    </div>
  );
}

export function StateBadge({ state }: { state: string }): React.JSX.Element {
  return <span className={`badge badge-${state.toLowerCase()}`}>{state.toLowerCase()}</span>;
}

/** A button that runs an async action, disables itself meanwhile and reports a failure. */
export function ActionButton({
  label,
  run,
  danger,
  disabled,
  onDone,
}: {
  label: string;
  run: () => Promise<unknown>;
  danger?: boolean;
  disabled?: boolean;
  onDone?: () => void;
}): React.JSX.Element {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  return (
    <span className="action">
      <button
        type="button"
        className={danger ? 'danger' : 'secondary'}
        disabled={busy || disabled}
        aria-busy={busy}
        onClick={() => {
          setBusy(true);
          setError(null);
          run()
            .then(() => onDone?.())
            .catch((err: unknown) => setError(err instanceof Error ? err.message : String(err)))
            .finally(() => setBusy(false));
        }}
      >
        {busy ? `${label}…` : label}
      </button>
      {error && (
        <span className="action-error" role="alert">
          {error}
        </span>
      )}
    </span>
  );
}

export function Json({ value }: { value: unknown }): React.JSX.Element {
  return <pre className="json">{JSON.stringify(value, null, 2)}</pre>;
}
