import { useId, useState, type FormEvent, type ReactNode } from 'react';
import type { AdminSessionDto, SettingDto, VerificationPolicyDto } from '@gpumesh/sdk/types';
import { get, put } from '../api';
import { Loaded } from '../components';
import { when } from '../format';
import { useLoad } from '../hooks';

type Save = (value: unknown) => Promise<void>;

/** A form for one editable setting: Save (validated by the coordinator) and Reset to the default. */
function SettingForm({
  setting,
  canAct,
  onSaved,
  children,
  value,
}: {
  setting: SettingDto;
  canAct: boolean;
  onSaved: () => void;
  /** The inputs; `value()` reads what they hold. */
  children: ReactNode;
  value: () => unknown;
}): React.JSX.Element {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [reason, setReason] = useState('');
  const titleId = useId();
  const reasonId = useId();

  const save: Save = async (v) => {
    setBusy(true);
    setError(null);
    setSaved(null);
    if (reason.trim().length < 3) {
      setBusy(false);
      setError('Say why (at least 3 characters): the reason is kept in the audit log.');
      return;
    }
    try {
      const updated = await put<SettingDto>(`/v1/admin/settings/${encodeURIComponent(setting.key)}`, {
        value: v,
        reason: reason.trim(),
      });
      setReason('');
      setSaved(v === null ? `Back to the default: ${updated.value}` : `Saved: ${updated.value}`);
      onSaved();
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
    } finally {
      setBusy(false);
    }
  };

  const submit = (e: FormEvent): void => {
    e.preventDefault();
    void save(value());
  };

  return (
    <form
      className="card setting-form"
      aria-labelledby={titleId}
      onSubmit={submit}
      data-setting={setting.key}
    >
      <h2 id={titleId}>
        {setting.label} <code className="muted small">{setting.key}</code>
      </h2>
      <p className="muted small">{setting.note}</p>
      <p>
        Now: <strong data-testid={`setting-value-${setting.key}`}>{setting.value}</strong>
        {setting.overridden ? (
          <span className="muted small">
            {' '}
            (set by {setting.updatedBy ?? 'an admin'} {when(setting.updatedAt ?? null)}; default{' '}
            {JSON.stringify(setting.default)})
          </span>
        ) : (
          <span className="muted small"> (the configured default)</span>
        )}
      </p>
      <fieldset disabled={!canAct || busy}>
        <legend className="sr-only">{setting.label}</legend>
        <div className="setting-inputs">{children}</div>
        <label htmlFor={reasonId}>Reason for the change (kept in the audit log)</label>
        <input
          id={reasonId}
          type="text"
          className="setting-reason"
          maxLength={500}
          value={reason}
          onChange={(e) => setReason(e.target.value)}
        />
        <div className="actions">
          <button type="submit" aria-busy={busy}>
            {busy ? 'Saving…' : 'Save'}
          </button>
          {setting.overridden && (
            <button type="button" className="secondary" onClick={() => void save(null)}>
              Reset to default
            </button>
          )}
        </div>
      </fieldset>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {saved && (
        <p className="ok" role="status">
          {saved}
        </p>
      )}
    </form>
  );
}

/** Empty text stays empty (the coordinator names the field); anything else is sent as a number. */
function num(text: string): number | string {
  return text.trim() === '' ? text : Number(text);
}

function VerificationForm(props: {
  setting: SettingDto;
  canAct: boolean;
  onSaved: () => void;
}): React.JSX.Element {
  const current = props.setting.current as VerificationPolicyDto;
  const [mode, setMode] = useState(current.mode);
  const [k, setK] = useState(String(current.k >= 2 ? current.k : 2));
  const [canary, setCanary] = useState(String(current.canaryRate));
  // a saved (or reset) value comes back from the coordinator: show it (set during render, React's
  // pattern for state that follows a prop)
  const currentKey = JSON.stringify(current);
  const [shown, setShown] = useState(currentKey);
  if (shown !== currentKey) {
    setShown(currentKey);
    setMode(current.mode);
    setK(String(current.k >= 2 ? current.k : 2));
    setCanary(String(current.canaryRate));
  }
  return (
    <SettingForm
      {...props}
      value={() =>
        mode === 'redundant'
          ? { mode, k: num(k), canaryRate: num(canary) }
          : { mode, canaryRate: num(canary) }
      }
    >
      <label>
        Mode
        <select value={mode} onChange={(e) => setMode(e.target.value as VerificationPolicyDto['mode'])}>
          <option value="none">none (one provider)</option>
          <option value="redundant">redundant (k distinct operators)</option>
        </select>
      </label>
      <label>
        k (operators)
        <input
          type="number"
          inputMode="numeric"
          value={k}
          disabled={mode !== 'redundant'}
          onChange={(e) => setK(e.target.value)}
        />
      </label>
      <label>
        Canary rate (0–0.5)
        <input
          type="number"
          step="any"
          inputMode="decimal"
          value={canary}
          onChange={(e) => setCanary(e.target.value)}
        />
      </label>
    </SettingForm>
  );
}

function NumberForm(props: {
  setting: SettingDto;
  canAct: boolean;
  onSaved: () => void;
  label: string;
}): React.JSX.Element {
  const current = String(props.setting.current);
  const [text, setText] = useState(current);
  const [shown, setShown] = useState(current);
  if (shown !== current) {
    setShown(current);
    setText(current);
  }
  return (
    <SettingForm {...props} value={() => num(text)}>
      <label>
        {props.label}
        <input type="number" inputMode="numeric" value={text} onChange={(e) => setText(e.target.value)} />
      </label>
    </SettingForm>
  );
}

export function SettingsPage({ session }: { session: AdminSessionDto }): React.JSX.Element {
  const load = useLoad(() => get<SettingDto[]>('/v1/admin/settings'), []);
  return (
    <section aria-labelledby="settings-title">
      <div className="page-head">
        <h1 id="settings-title">Settings</h1>
      </div>
      <p className="muted">
        The verification policy, the fee and the epoch length change at run time and reach every coordinator
        process within a few seconds; the coordinator validates each value.{' '}
        {session.canAct ? '' : 'Your key is read-only: you cannot change them.'}
      </p>
      <Loaded load={load} what="settings" retry={load.reload}>
        {(settings) => {
          const editable = settings.filter((s) => s.editable);
          const fixed = settings.filter((s) => !s.editable);
          return (
            <>
              <div className="settings-forms">
                {editable.map((s) => {
                  const key = s.key;
                  const common = { setting: s, canAct: session.canAct, onSaved: load.reload };
                  if (s.key === 'verification') return <VerificationForm key={key} {...common} />;
                  if (s.key === 'platformFeeBps')
                    return <NumberForm key={key} {...common} label="Fee (basis points, 0–10000)" />;
                  if (s.key === 'epochSeconds')
                    return <NumberForm key={key} {...common} label="Epoch length (seconds)" />;
                  return null;
                })}
              </div>
              <h2>Configuration</h2>
              <p className="muted small">
                Set in the environment (see .env.example); a restart applies changes.
              </p>
              <dl className="card kv settings">
                {fixed.map((s) => (
                  <div key={s.key} className="setting">
                    <dt>
                      {s.label} <code className="muted small">{s.key}</code>
                    </dt>
                    <dd>
                      <strong>{s.value ?? 'not configured'}</strong>
                      <div className="muted small">{s.note}</div>
                    </dd>
                  </div>
                ))}
              </dl>
            </>
          );
        }}
      </Loaded>
    </section>
  );
}
