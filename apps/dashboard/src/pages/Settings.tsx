import { get, type Setting } from '../api';
import { Loaded } from '../components';
import { useLoad } from '../hooks';

export function SettingsPage(): React.JSX.Element {
  const load = useLoad(() => get<Setting[]>('/v1/admin/settings'), []);
  return (
    <section aria-labelledby="settings-title">
      <div className="page-head">
        <h1 id="settings-title">Settings</h1>
      </div>
      <p className="muted">Read-only: these come from the coordinator's configuration (see .env.example).</p>
      <Loaded load={load} what="settings" retry={load.reload}>
        {(settings) => (
          <dl className="card kv settings">
            {settings.map((s) => (
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
        )}
      </Loaded>
    </section>
  );
}
