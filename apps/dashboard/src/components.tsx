import { useState, type ReactNode } from 'react';
import { ApiError, exportUrl } from './api';
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
/**
 * A button that runs an action and shows its error. With `confirm`, the first click asks: the
 * question, a reason (required, kept in the admin audit log) and a confirm button; `run` gets the reason.
 */
export function ActionButton({
  label,
  run,
  danger,
  disabled,
  onDone,
  confirm,
}: {
  label: string;
  run: (reason: string) => Promise<unknown>;
  danger?: boolean;
  disabled?: boolean;
  onDone?: () => void;
  /** What the action will do, asked before it runs (e.g. "Ban this provider? It gets no new work."). */
  confirm?: string;
}): React.JSX.Element {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [asking, setAsking] = useState(false);
  const [reason, setReason] = useState('');
  const go = (why: string): void => {
    setBusy(true);
    setError(null);
    run(why)
      .then(() => {
        setAsking(false);
        setReason('');
        onDone?.();
      })
      .catch((err: unknown) => setError(err instanceof Error ? err.message : String(err)))
      .finally(() => setBusy(false));
  };
  const id = `why-${label.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return (
    <span className="action">
      {asking && confirm ? (
        <form
          className="confirm card"
          aria-label={`Confirm: ${label}`}
          onSubmit={(e) => {
            e.preventDefault();
            if (reason.trim().length >= 3) go(reason.trim());
          }}
        >
          <p>{confirm}</p>
          <label htmlFor={id}>Reason (kept in the audit log)</label>
          <textarea
            id={id}
            required
            minLength={3}
            maxLength={500}
            rows={2}
            autoFocus
            value={reason}
            onChange={(e) => setReason(e.target.value)}
          />
          <div className="actions">
            <button
              type="submit"
              className={danger ? 'danger' : 'primary'}
              disabled={busy || reason.trim().length < 3}
              aria-busy={busy}
            >
              {busy ? `${label}…` : `Confirm ${label.toLowerCase()}`}
            </button>
            <button
              type="button"
              className="secondary"
              onClick={() => {
                setAsking(false);
                setError(null);
              }}
            >
              Cancel
            </button>
          </div>
        </form>
      ) : (
        <button
          type="button"
          className={danger ? 'danger' : 'secondary'}
          disabled={busy || disabled}
          aria-busy={busy}
          onClick={() => (confirm ? setAsking(true) : go(''))}
        >
          {busy ? `${label}…` : label}
        </button>
      )}
      {error && (
        <span className="action-error" role="alert">
          {error}
        </span>
      )}
    </span>
  );
}

/**
 * A JSON block. It scrolls when long, so it is a named region the keyboard can reach (Tab focuses
 * it, the arrow keys scroll it).
 */
export function Json({ value, label }: { value: unknown; label: string }): React.JSX.Element {
  return (
    <pre className="json" tabIndex={0} role="region" aria-label={label}>
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}

/**
 * A table's scrolling box, focusable and named: a table wider than the screen (at phone width most
 * are) scrolls by keyboard too, and a screen reader names the region (axe: scrollable-region-focusable).
 */
export function TableWrap({
  label,
  children,
}: {
  label: string;
  children: React.ReactNode;
}): React.JSX.Element {
  return (
    <div className="table-wrap" role="region" aria-label={label} tabIndex={0}>
      {children}
    </div>
  );
}

/**
 * Newest / Older buttons of a cursor-paged list (`cursor` null: the newest page is shown; `next`
 * null or absent: it is the oldest).
 */
export function Pager({
  cursor,
  next,
  go,
}: {
  cursor: string | null;
  next?: string | null;
  go: (cursor: string | null) => void;
}): React.JSX.Element {
  return (
    <div className="pager">
      {cursor && (
        <button type="button" className="secondary" onClick={() => go(null)}>
          Newest
        </button>
      )}
      {next && (
        <button type="button" className="secondary" onClick={() => go(next)}>
          Older
        </button>
      )}
    </div>
  );
}

/** A link that downloads a CSV export (every row of the table or filter, not only the page shown). */
export function CsvDownload({
  table,
  label,
  filters,
}: {
  table: 'jobs' | 'ledger' | 'epochs';
  label: string;
  /** Export filters (the jobs page passes its own). */
  filters?: URLSearchParams;
}): React.JSX.Element {
  return (
    <a className="button secondary" href={exportUrl(table, filters)} download data-testid={`export-${table}`}>
      Download {label} (CSV)
    </a>
  );
}
