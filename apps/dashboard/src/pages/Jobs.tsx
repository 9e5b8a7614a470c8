import { useCallback, useState, type FormEvent } from 'react';
import type { AdminJobDetailDto, AdminJobPageDto, AdminSessionDto, JobEventDto } from '@gpumesh/sdk/types';
import { get, post } from '../api';
import { ActionButton, CsvDownload, Empty, Json, Loaded, Pager, StateBadge, TableWrap } from '../components';
import { ago, shortId, tokens, when } from '../format';
import { useEventStream, useLoad } from '../hooks';
import { href, navigate } from '../router';

const STATES = [
  '',
  'QUEUED',
  'DISPATCHED',
  'RUNNING',
  'VERIFYING',
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'EXPIRED',
];
const TERMINAL = ['COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED'];

export function JobsPage({ query }: { query: URLSearchParams }): React.JSX.Element {
  const state = query.get('state') ?? '';
  const accountId = query.get('accountId') ?? '';
  const providerId = query.get('providerId') ?? '';
  const [form, setForm] = useState({ state, accountId, providerId });
  const [cursor, setCursor] = useState<string | null>(null);
  const params = new URLSearchParams();
  if (state) params.set('state', state);
  if (accountId) params.set('accountId', accountId);
  if (providerId) params.set('providerId', providerId);
  // the export takes the same filters, every page of them
  const filters = new URLSearchParams(params);
  if (cursor) params.set('cursor', cursor);
  params.set('limit', '50');
  const qs = params.toString();
  const load = useLoad(() => get<AdminJobPageDto>(`/v1/admin/jobs?${qs}`), [qs], cursor ? undefined : 3000);

  const apply = (event: FormEvent): void => {
    event.preventDefault();
    const next = new URLSearchParams();
    if (form.state) next.set('state', form.state);
    if (form.accountId.trim()) next.set('accountId', form.accountId.trim());
    if (form.providerId.trim()) next.set('providerId', form.providerId.trim());
    setCursor(null);
    navigate(`#/jobs${next.toString() ? `?${next.toString()}` : ''}`);
  };

  return (
    <section aria-labelledby="jobs-title">
      <div className="page-head">
        <h1 id="jobs-title">Jobs</h1>
        <span className="downloads">
          <CsvDownload table="jobs" label={filters.size > 0 ? 'these jobs' : 'all jobs'} filters={filters} />
        </span>
      </div>
      <form className="filters" onSubmit={apply} aria-label="Filter jobs">
        <label>
          State
          <select value={form.state} onChange={(e) => setForm({ ...form, state: e.target.value })}>
            {STATES.map((s) => (
              <option key={s} value={s}>
                {s ? s.toLowerCase() : 'all'}
              </option>
            ))}
          </select>
        </label>
        <label>
          Account id
          <input
            value={form.accountId}
            placeholder="uuid"
            onChange={(e) => setForm({ ...form, accountId: e.target.value })}
          />
        </label>
        <label>
          Provider peer id
          <input
            value={form.providerId}
            placeholder="12D3Koo…"
            onChange={(e) => setForm({ ...form, providerId: e.target.value })}
          />
        </label>
        <button type="submit">Filter</button>
      </form>
      <Loaded load={load} what="jobs" retry={load.reload}>
        {(page) =>
          page.items.length === 0 ? (
            <Empty>No jobs{state || accountId || providerId ? ' match these filters' : ' yet'}.</Empty>
          ) : (
            <>
              <TableWrap label="Jobs table">
                <table data-testid="jobs-table">
                  <thead>
                    <tr>
                      <th scope="col">Job</th>
                      <th scope="col">State</th>
                      <th scope="col">Kind</th>
                      <th scope="col">Account</th>
                      <th scope="col">Work units</th>
                      <th scope="col">Charged / reserved</th>
                      <th scope="col">Submitted</th>
                    </tr>
                  </thead>
                  <tbody>
                    {page.items.map((j) => (
                      <tr key={j.id} data-job={j.id}>
                        <td>
                          <a className="mono" href={href('jobs', j.id)}>
                            {shortId(j.id)}
                          </a>
                        </td>
                        <td>
                          <StateBadge state={j.state} />
                        </td>
                        <td>{j.kind}</td>
                        <td>
                          <a className="mono" href={href('accounts', j.accountId)}>
                            {shortId(j.accountAddress, 6)}
                          </a>
                        </td>
                        <td className="num">{j.workUnits}</td>
                        <td className="num">
                          {TERMINAL.includes(j.state) ? tokens(j.charged) : `${tokens(j.reserved)} held`}
                        </td>
                        <td>{ago(j.createdAt)}</td>
                      </tr>
                    ))}
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

function eventSummary(e: JobEventDto): string {
  const data = e.data ?? {};
  const bits: string[] = [];
  if (typeof data.provider === 'string') bits.push(`provider ${shortId(data.provider)}`);
  if (Array.isArray(data.providers))
    bits.push(`providers ${data.providers.map((p) => shortId(String(p))).join(', ')}`);
  if (typeof data.attempt === 'number') bits.push(`attempt ${data.attempt}`);
  if (typeof data.fraction === 'number') bits.push(`${Math.round(data.fraction * 100)} %`);
  for (const key of ['reason', 'error', 'by'])
    if (typeof data[key] === 'string') bits.push(String(data[key]));
  if (Array.isArray(data.reasons)) bits.push(data.reasons.map(String).join('; '));
  return bits.join(' · ');
}

export function JobPage({ id, session }: { id: string; session: AdminSessionDto }): React.JSX.Element {
  const load = useLoad(() => get<AdminJobDetailDto>(`/v1/admin/jobs/${encodeURIComponent(id)}`), [id]);
  const [liveEvents, setLiveEvents] = useState<JobEventDto[]>([]);
  const reload = load.reload;
  const onEvent = useCallback(
    (data: unknown) => {
      const event = data as JobEventDto;
      setLiveEvents((list) => (list.some((e) => e.id === event.id) ? list : [...list, event]));
      if (event.toState || event.type.startsWith('attempt.')) reload();
    },
    [reload],
  );
  // a finished job has nothing more to say: no stream (and no reconnecting) once it is known to be over
  const over = load.data !== undefined && TERMINAL.includes(load.data.state);
  const stream = useEventStream(over ? null : `/v1/admin/jobs/${encodeURIComponent(id)}/events`, {
    'job-event': onEvent,
  });

  return (
    <section aria-labelledby="job-title">
      <p>
        <a href={href('jobs')}>← Jobs</a>
      </p>
      <Loaded load={load} what="job" retry={load.reload}>
        {(job) => {
          const known = new Set(job.events.map((e) => e.id));
          const events = [...job.events, ...liveEvents.filter((e) => !known.has(e.id))];
          const finished = TERMINAL.includes(job.state);
          return (
            <>
              <div className="page-head">
                <h1 id="job-title" className="mono wrap">
                  Job {job.id}
                </h1>
                <span data-testid="job-state">
                  <StateBadge state={job.state} />
                </span>
                {!finished && (
                  <span className={`live live-${stream}`} role="status">
                    {stream === 'live' ? 'following live' : 'connecting…'}
                  </span>
                )}
              </div>
              {session.canAct && !finished && (
                <div className="actions">
                  <ActionButton
                    label="Cancel job"
                    danger
                    confirm="Cancel this job? Its reservation is released and its developer is not charged for work not done."
                    run={(reason) => post(`/v1/admin/jobs/${encodeURIComponent(job.id)}/cancel`, { reason })}
                    onDone={reload}
                  />
                </div>
              )}
              <div className="grid2">
                <dl className="card kv">
                  <dt>Kind</dt>
                  <dd>{job.kind}</dd>
                  <dt>Account</dt>
                  <dd>
                    <a className="mono wrap" href={href('accounts', job.accountId)}>
                      {job.accountAddress}
                    </a>
                  </dd>
                  <dt>Work units</dt>
                  <dd>{job.workUnits}</dd>
                  <dt>Max price / unit</dt>
                  <dd>{job.pricePerUnit}</dd>
                  <dt>Redundancy</dt>
                  <dd>{job.redundancy}</dd>
                  <dt>Reserved</dt>
                  <dd>
                    {tokens(job.reserved)} tokens{' '}
                    <span className="muted small">
                      {finished ? '(released: what was not charged went back)' : '(held until it ends)'}
                    </span>
                  </dd>
                  <dt>Charged</dt>
                  <dd data-testid="job-charged">
                    {finished ? (
                      <>
                        {tokens(job.charged)} tokens
                        <div className="muted small">
                          work {tokens(job.chargedBreakdown.work)} + further runs{' '}
                          {tokens(job.chargedBreakdown.redundancy)} + platform fee{' '}
                          {tokens(job.chargedBreakdown.fee)}
                          {job.chargedBreakdown.canary !== '0' &&
                            ` + canary ${tokens(job.chargedBreakdown.canary)}`}
                        </div>
                      </>
                    ) : (
                      'when it completes'
                    )}
                  </dd>
                  <dt>Deadline</dt>
                  <dd>{when(job.deadlineAt)}</dd>
                  {job.error && (
                    <>
                      <dt>Error</dt>
                      <dd>
                        {job.error.code}: {job.error.message}
                      </dd>
                    </>
                  )}
                </dl>
                <dl className="card kv">
                  <dt>Verification</dt>
                  <dd data-testid="verdict">
                    <StateBadge state={job.verdict.outcome} /> {job.verdict.detail}
                  </dd>
                  <dt>Result hash</dt>
                  <dd className="mono wrap">{job.resultHash ?? '—'}</dd>
                  <dt>Result</dt>
                  <dd>{job.result ? <Json value={job.result} label="Job result (JSON)" /> : '—'}</dd>
                </dl>
              </div>
              <h2>Timeline</h2>
              <ol className="timeline" data-testid="timeline" aria-live="polite">
                {events.map((e) => (
                  <li key={e.id} data-type={e.type}>
                    <time dateTime={e.createdAt}>{when(e.createdAt)}</time>
                    <strong>{e.type}</strong>
                    {e.toState && (
                      <span>
                        {' '}
                        {e.fromState ? `${e.fromState.toLowerCase()} → ` : ''}
                        {e.toState.toLowerCase()}
                      </span>
                    )}
                    <span className="muted"> {eventSummary(e)}</span>
                  </li>
                ))}
              </ol>
              <h2>Attempts and receipts</h2>
              {job.attempts.length === 0 ? (
                <Empty>Not offered to a provider yet.</Empty>
              ) : (
                <TableWrap label="Attempts and receipts">
                  <table>
                    <thead>
                      <tr>
                        <th scope="col">#</th>
                        <th scope="col">Provider</th>
                        <th scope="col">State</th>
                        <th scope="col">Output hash</th>
                        <th scope="col">Receipt</th>
                      </tr>
                    </thead>
                    <tbody>
                      {job.attempts.map((a) => (
                        <tr key={a.attempt}>
                          <td className="num">{a.attempt}</td>
                          <td>
                            {a.providerId ? (
                              <a className="mono" href={href('providers', a.providerId)}>
                                {shortId(a.providerId)}
                              </a>
                            ) : (
                              '—'
                            )}
                          </td>
                          <td>
                            <StateBadge state={a.state} />
                            {a.error && <span className="muted small"> {a.error}</span>}
                          </td>
                          <td className="mono">{a.outputHash ? shortId(a.outputHash, 10) : '—'}</td>
                          <td>
                            {a.receipt ? (
                              <details>
                                <summary>signed receipt</summary>
                                <Json
                                  value={a.receipt}
                                  label={`Signed receipt of attempt ${a.attempt} (JSON)`}
                                />
                              </details>
                            ) : (
                              '—'
                            )}
                          </td>
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </TableWrap>
              )}
              {job.ledger.length > 0 && (
                <>
                  <h2>Ledger</h2>
                  <TableWrap label="Ledger moves of this job">
                    <table>
                      <thead>
                        <tr>
                          <th scope="col">Kind</th>
                          <th scope="col">Account</th>
                          <th scope="col">Amount</th>
                        </tr>
                      </thead>
                      <tbody>
                        {job.ledger.map((l, i) => (
                          <tr key={i}>
                            <td>{l.kind}</td>
                            <td className="mono wrap">{l.account}</td>
                            <td className="num">{tokens(l.amount)}</td>
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  </TableWrap>
                </>
              )}
              <details>
                <summary>Job spec</summary>
                <Json value={job.spec} label="Job spec (JSON)" />
              </details>
            </>
          );
        }}
      </Loaded>
    </section>
  );
}
