import { useState, type FormEvent } from 'react';
import type { AuditLogEntryDto, AuditLogPageDto } from '@gpumesh/sdk/types';
import { get } from '../api';
import { Empty, Loaded, Pager, TableWrap } from '../components';
import { shortId, when } from '../format';
import { useLoad } from '../hooks';
import { href, navigate } from '../router';

const ACTIONS = [
  '',
  'provider.ban',
  'provider.unban',
  'provider.drain',
  'provider.undrain',
  'job.cancel',
  'api_key.revoke',
  'slash.cancel',
  'setting.change',
] as const;

/** Where an entry's target lives in the dashboard, when it has a page. */
function targetLink(e: AuditLogEntryDto): string | null {
  if (e.action.startsWith('provider.')) return href('providers', e.target);
  if (e.action === 'job.cancel') return href('jobs', e.target);
  if (e.action === 'setting.change') return href('settings');
  if (e.action === 'slash.cancel') return href('slashes');
  return null;
}

/** The keys of `after` that differ from `before`: `status: ONLINE → BANNED; reputation: 0.95`. */
function change(before: Record<string, unknown> | null, after: Record<string, unknown> | null): string {
  const keys = Object.keys(after ?? {});
  const text = (v: unknown): string =>
    v === undefined ? '—' : typeof v === 'string' ? v : JSON.stringify(v);
  return keys
    .filter((k) => JSON.stringify(before?.[k]) !== JSON.stringify(after?.[k]))
    .map((k) =>
      before && k in before ? `${k}: ${text(before[k])} → ${text(after?.[k])}` : `${k}: ${text(after?.[k])}`,
    )
    .join('; ');
}

/** The admin audit log: every ban, drain, revoke, cancel and settings change, who, why, before and after. */
export function AuditLogPage({ query }: { query: URLSearchParams }): React.JSX.Element {
  const action = query.get('action') ?? '';
  const target = query.get('target') ?? '';
  const [form, setForm] = useState({ action, target });
  const [cursor, setCursor] = useState<string | null>(null);
  const params = new URLSearchParams();
  if (action) params.set('action', action);
  if (target) params.set('target', target);
  if (cursor) params.set('cursor', cursor);
  params.set('limit', '50');
  const qs = params.toString();
  const load = useLoad(
    () => get<AuditLogPageDto>(`/v1/admin/audit-log?${qs}`),
    [qs],
    cursor ? undefined : 5000,
  );

  const apply = (event: FormEvent): void => {
    event.preventDefault();
    const next = new URLSearchParams();
    if (form.action) next.set('action', form.action);
    if (form.target.trim()) next.set('target', form.target.trim());
    setCursor(null);
    navigate(`#/audit-log${next.toString() ? `?${next.toString()}` : ''}`);
  };

  return (
    <section aria-labelledby="audit-title">
      <div className="page-head">
        <h1 id="audit-title">Audit log</h1>
      </div>
      <p className="muted small">
        Every admin action, appended and never changed: who, what, why, and the target before and after.
      </p>
      <form className="filters" onSubmit={apply} aria-label="Filter the audit log">
        <label>
          Action
          <select value={form.action} onChange={(e) => setForm({ ...form, action: e.target.value })}>
            {ACTIONS.map((a) => (
              <option key={a} value={a}>
                {a || 'all'}
              </option>
            ))}
          </select>
        </label>
        <label>
          Target
          <input
            value={form.target}
            placeholder="peer id, job id, key id, setting"
            onChange={(e) => setForm({ ...form, target: e.target.value })}
          />
        </label>
        <button type="submit">Filter</button>
      </form>
      <Loaded load={load} what="the audit log" retry={load.reload}>
        {(page) =>
          page.items.length === 0 ? (
            <Empty>{action || target ? 'No action matches these filters.' : 'No admin has acted yet.'}</Empty>
          ) : (
            <>
              <TableWrap label="Audit log entries">
                <table data-testid="audit-log">
                  <thead>
                    <tr>
                      <th scope="col">When</th>
                      <th scope="col">Admin</th>
                      <th scope="col">Action</th>
                      <th scope="col">Target</th>
                      <th scope="col">Reason</th>
                      <th scope="col">Change</th>
                    </tr>
                  </thead>
                  <tbody>
                    {page.items.map((e) => {
                      const link = targetLink(e);
                      return (
                        <tr key={e.id} data-action={e.action}>
                          <td>{when(e.at)}</td>
                          <td className="mono" title={e.actor}>
                            {shortId(e.actor, 6)}
                          </td>
                          <td>
                            <code>{e.action}</code>
                          </td>
                          <td className="mono" title={e.target}>
                            {link ? <a href={link}>{shortId(e.target, 10)}</a> : shortId(e.target, 10)}
                          </td>
                          <td className="wrap">{e.reason}</td>
                          <td className="small wrap">{change(e.before, e.after)}</td>
                        </tr>
                      );
                    })}
                  </tbody>
                </table>
              </TableWrap>
              <Pager cursor={cursor} next={page.nextCursor} go={setCursor} />
            </>
          )
        }
      </Loaded>
    </section>
  );
}
