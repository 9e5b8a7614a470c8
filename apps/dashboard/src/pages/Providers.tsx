import { useMemo, useState } from 'react';
import type {
  AdminProviderDetailDto,
  AdminProviderDto,
  AdminSessionDto,
  ProviderPlacementDto,
  StakeDto,
} from '@gpumesh/sdk/types';
import { get, post } from '../api';
import { ScoreChart } from '../charts';
import { ActionButton, Empty, Json, Loaded, StateBadge, TableWrap } from '../components';
import { SlashTable } from './Slashes';
import { ago, shortId, tokens, when } from '../format';
import { useLoad } from '../hooks';
import { href } from '../router';

const STATUSES = ['', 'ONLINE', 'DRAINING', 'BANNED', 'OFFLINE'];
type SortKey = 'lastSeenAt' | 'status' | 'gflops' | 'reputation' | 'pricePerUnit' | 'freeSlots';
const COLUMNS: [SortKey, string][] = [
  ['status', 'Status'],
  ['gflops', 'GFLOP/s'],
  ['pricePerUnit', 'Price / unit'],
  ['freeSlots', 'Free slots'],
  ['reputation', 'Reputation'],
  ['lastSeenAt', 'Last seen'],
];

function compare(a: AdminProviderDto, b: AdminProviderDto, key: SortKey): number {
  switch (key) {
    case 'pricePerUnit': {
      const d = BigInt(a.pricePerUnit) - BigInt(b.pricePerUnit);
      return d < 0n ? -1 : d > 0n ? 1 : 0;
    }
    case 'status':
      return a.status.localeCompare(b.status);
    case 'lastSeenAt':
      return a.lastSeenAt.localeCompare(b.lastSeenAt);
    default:
      return a[key] - b[key];
  }
}

function hardware(p: AdminProviderDto): string {
  if (!p.gpus.length) return p.backend;
  return `${p.backend}: ${p.gpus.map((g) => g.model ?? 'GPU').join(', ')}`;
}

export function ProvidersPage({ query }: { query: URLSearchParams }): React.JSX.Element {
  const [status, setStatus] = useState(query.get('status') ?? '');
  const [text, setText] = useState('');
  const [sort, setSort] = useState<{ key: SortKey; desc: boolean }>({ key: 'lastSeenAt', desc: true });
  const load = useLoad(
    () => get<AdminProviderDto[]>(`/v1/admin/providers${status ? `?status=${status}` : ''}`),
    [status],
    3000,
  );

  const rows = useMemo(() => {
    const needle = text.trim().toLowerCase();
    const list = (load.data ?? []).filter(
      (p) =>
        !needle ||
        p.peerId.toLowerCase().includes(needle) ||
        p.operatorId.toLowerCase().includes(needle) ||
        hardware(p).toLowerCase().includes(needle) ||
        (p.region ?? '').toLowerCase().includes(needle),
    );
    return [...list].sort((a, b) => compare(a, b, sort.key) * (sort.desc ? -1 : 1));
  }, [load.data, text, sort]);

  return (
    <section aria-labelledby="providers-title">
      <div className="page-head">
        <h1 id="providers-title">Providers</h1>
      </div>
      <div className="filters">
        <label>
          Status
          <select value={status} onChange={(e) => setStatus(e.target.value)}>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s ? s.toLowerCase() : 'all'}
              </option>
            ))}
          </select>
        </label>
        <label>
          Search
          <input
            type="search"
            value={text}
            placeholder="peer id, operator, GPU, region"
            onChange={(e) => setText(e.target.value)}
          />
        </label>
      </div>
      <Loaded load={load} what="providers" retry={load.reload}>
        {() =>
          rows.length === 0 ? (
            <Empty>
              {load.data?.length
                ? 'No provider matches these filters.'
                : 'No providers yet. Start an agent: '}
              {!load.data?.length && <code>npx gpumesh-agent start</code>}
            </Empty>
          ) : (
            <TableWrap label="Providers table">
              <table data-testid="providers-table">
                <caption className="sr-only">Providers, sortable by column</caption>
                <thead>
                  <tr>
                    <th scope="col">Peer</th>
                    <th scope="col">Hardware</th>
                    {COLUMNS.map(([key, label]) => (
                      <th
                        key={key}
                        scope="col"
                        aria-sort={sort.key === key ? (sort.desc ? 'descending' : 'ascending') : 'none'}
                      >
                        <button
                          type="button"
                          className="sort"
                          onClick={() => setSort((s) => ({ key, desc: s.key === key ? !s.desc : true }))}
                        >
                          {label}
                          <span aria-hidden="true">{sort.key === key ? (sort.desc ? ' ▾' : ' ▴') : ''}</span>
                        </button>
                      </th>
                    ))}
                  </tr>
                </thead>
                <tbody>
                  {rows.map((p) => (
                    <tr key={p.peerId} data-peer={p.peerId}>
                      <td>
                        <a className="mono" href={href('providers', p.peerId)}>
                          {shortId(p.peerId)}
                        </a>
                      </td>
                      <td>{hardware(p)}</td>
                      <td>
                        <StateBadge state={p.status} />
                        {!p.live && p.status !== 'OFFLINE' && <span className="muted small"> stale</span>}
                      </td>
                      <td className="num">{p.gflops.toFixed(1)}</td>
                      <td className="num">{p.pricePerUnit}</td>
                      <td className="num">
                        {p.freeSlots}/{p.slots}
                      </td>
                      <td className="num">{p.reputation.toFixed(2)}</td>
                      <td>{ago(p.lastSeenAt)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </TableWrap>
          )
        }
      </Loaded>
    </section>
  );
}

function StakeText({ stake }: { stake: StakeDto }): React.JSX.Element {
  if (!stake.available) return <span className="muted">{stake.note ?? 'no chain'}</span>;
  const unbonding = BigInt(stake.unbonding ?? '0');
  const frozen = BigInt(stake.frozen ?? '0');
  return (
    <>
      {tokens(stake.bonded ?? '0')} tokens bonded
      {unbonding > 0n && (
        <div className="muted small">
          {tokens(stake.unbonding ?? '0')} unbonding until {when(stake.unbondingEndsAt)} (still slashable)
        </div>
      )}
      {frozen > 0n && (
        <div className="muted small">{tokens(stake.frozen ?? '0')} frozen by pending slash proposals</div>
      )}
    </>
  );
}

export function ProviderPage({
  peerId,
  session,
}: {
  peerId: string;
  session: AdminSessionDto;
}): React.JSX.Element {
  const load = useLoad(
    () => get<AdminProviderDetailDto>(`/v1/admin/providers/${encodeURIComponent(peerId)}`),
    [peerId],
    3000,
  );
  const act = (action: 'ban' | 'unban' | 'drain' | 'undrain') => (reason: string) =>
    post(`/v1/admin/providers/${encodeURIComponent(peerId)}/${action}`, { reason });

  return (
    <section aria-labelledby="provider-title">
      <p>
        <a href={href('providers')}>← Providers</a>
      </p>
      <Loaded load={load} what="provider" retry={load.reload}>
        {(p) => (
          <>
            <div className="page-head">
              <h1 id="provider-title" className="mono wrap">
                {p.peerId}
              </h1>
              <span data-testid="provider-status">
                <StateBadge state={p.status} />
              </span>
            </div>
            {session.canAct && (
              <div className="actions" role="group" aria-label="Provider actions">
                {p.status !== 'BANNED' && (
                  <ActionButton
                    label="Ban"
                    danger
                    confirm="Ban this provider? It gets no new work; running jobs finish. Its reputation is left as it is."
                    run={act('ban')}
                    onDone={load.reload}
                  />
                )}
                {(p.status === 'ONLINE' || p.status === 'OFFLINE') && (
                  <ActionButton
                    label="Drain"
                    confirm="Drain this provider for maintenance? It gets no new work until undrained; no penalty."
                    run={act('drain')}
                    onDone={load.reload}
                  />
                )}
                {p.status === 'DRAINING' && (
                  <ActionButton
                    label="Undrain"
                    confirm="End the drain? The provider takes new work again."
                    run={act('undrain')}
                    onDone={load.reload}
                  />
                )}
                {p.status === 'BANNED' && (
                  <ActionButton
                    label="Unban"
                    confirm={`Lift the ban? ${p.reputation >= 0.3 ? `Its reputation stays ${p.reputation.toFixed(2)}.` : 'It returns on probation (reputation 0.30).'}`}
                    run={act('unban')}
                    onDone={load.reload}
                  />
                )}
              </div>
            )}
            <div className="grid2">
              <dl className="card kv">
                <dt>Operator</dt>
                <dd className="mono wrap">{p.operatorId}</dd>
                <dt>Signing address</dt>
                <dd className="mono wrap">{p.address}</dd>
                <dt>Backend</dt>
                <dd>{p.backend}</dd>
                <dt>GPUs</dt>
                <dd>
                  {p.gpus.length
                    ? p.gpus
                        .map((g) => `${g.model ?? 'GPU'}${g.vramMiB ? ` (${g.vramMiB} MiB)` : ''}`)
                        .join(', ')
                    : 'none (CPU)'}
                </dd>
                <dt>Benchmark</dt>
                <dd>{p.gflops.toFixed(1)} GFLOP/s (matmul)</dd>
                <dt>Price per unit</dt>
                <dd>{p.pricePerUnit} base units</dd>
                <dt>Slots</dt>
                <dd>
                  {p.freeSlots} free of {p.slots}
                </dd>
                <dt>Region</dt>
                <dd>{p.region ?? '—'}</dd>
                <dt>Last seen</dt>
                <dd>{when(p.lastSeenAt)}</dd>
                <dt>First seen</dt>
                <dd>{when(p.createdAt)}</dd>
              </dl>
              <dl className="card kv">
                <dt>Reputation</dt>
                <dd>
                  <meter min={0} max={1} value={p.reputation} aria-label="reputation" />{' '}
                  {p.reputation.toFixed(2)}
                </dd>
                <dt>Attempts</dt>
                <dd>
                  {Object.keys(p.attemptCounts).length
                    ? Object.entries(p.attemptCounts)
                        .map(([k, v]) => `${k.toLowerCase()} ${v}`)
                        .join(' · ')
                    : 'none yet'}
                </dd>
                <dt>Disproved claims</dt>
                <dd data-testid="provider-disproved-claims">
                  {p.disprovedInputFaults
                    ? `${p.disprovedInputFaults} input-fault claim${p.disprovedInputFaults === 1 ? '' : 's'} a verified result disproved`
                    : 'none'}
                </dd>
                <dt>Earned</dt>
                <dd>{tokens(p.earned)} tokens</dd>
                <dt>Stake</dt>
                <dd data-testid="provider-stake">
                  <StakeText stake={p.stake} />
                </dd>
                <dt>Placement</dt>
                <dd data-testid="provider-collateral">
                  {p.usableStake === null || p.usableStake === undefined
                    ? 'not stake-gated'
                    : `${tokens(p.usableStake)} tokens usable as collateral`}
                  {' · '}
                  {tokens(p.inFlightValue)} tokens of work in flight
                </dd>
                <dt>Offers</dt>
                <dd data-testid="provider-breaker">
                  {placementText(p.placement)}
                  <div className="muted small">as this coordinator process sees it</div>
                </dd>
                <dt>Slashes</dt>
                <dd>
                  {p.slashes.length
                    ? `${p.slashes.length} (${p.slashes.filter((s) => s.state === 'EXECUTED').length} executed)`
                    : 'none'}
                </dd>
                {p.bannedAt && (
                  <>
                    <dt>Banned</dt>
                    <dd>
                      {when(p.bannedAt)}
                      {p.banReason && <div className="muted small">{p.banReason}</div>}
                    </dd>
                  </>
                )}
              </dl>
            </div>
            <h2 id="reputation-title">Reputation history</h2>
            <div data-testid="reputation-history">
              <ScoreChart
                title="Score after each event"
                x={p.reputationHistory.map((e) => Date.parse(e.createdAt) / 1000)}
                y={p.reputationHistory.map((e) => e.score)}
              />
              {p.reputationHistory.length > 0 && (
                <details>
                  <summary>Events ({p.reputationHistory.length})</summary>
                  <TableWrap label="Reputation events">
                    <table aria-labelledby="reputation-title">
                      <thead>
                        <tr>
                          <th scope="col">When</th>
                          <th scope="col">Event</th>
                          <th scope="col">Change</th>
                          <th scope="col">Score</th>
                          <th scope="col">Job</th>
                        </tr>
                      </thead>
                      <tbody>
                        {[...p.reputationHistory].reverse().map((e) => (
                          <tr key={e.id} data-kind={e.kind}>
                            <td title={when(e.createdAt)}>{ago(e.createdAt)}</td>
                            <td>{e.kind}</td>
                            <td className="num">{`${e.delta >= 0 ? '+' : ''}${e.delta.toFixed(3)}`}</td>
                            <td className="num">{e.score.toFixed(3)}</td>
                            <td>
                              {e.jobId ? (
                                <a className="mono" href={href('jobs', e.jobId)}>
                                  {shortId(e.jobId)}
                                </a>
                              ) : (
                                '—'
                              )}
                            </td>
                          </tr>
                        ))}
                      </tbody>
                    </table>
                  </TableWrap>
                </details>
              )}
            </div>
            <h2>Slashes</h2>
            {p.slashes.length === 0 ? (
              <Empty>No slash has been proposed against this provider.</Empty>
            ) : (
              <SlashTable slashes={p.slashes} session={session} onChanged={load.reload} />
            )}
            <h2>Recent jobs</h2>
            {p.recentAttempts.length === 0 ? (
              <Empty>This provider has not been offered a job yet.</Empty>
            ) : (
              <TableWrap label="Recent jobs">
                <table>
                  <thead>
                    <tr>
                      <th scope="col">Job</th>
                      <th scope="col">Kind</th>
                      <th scope="col">Attempt</th>
                      <th scope="col">Attempt state</th>
                      <th scope="col">Job state</th>
                      <th scope="col">Offered</th>
                    </tr>
                  </thead>
                  <tbody>
                    {p.recentAttempts.map((a) => (
                      <tr key={`${a.jobId}-${a.attempt}`}>
                        <td>
                          <a className="mono" href={href('jobs', a.jobId)}>
                            {shortId(a.jobId)}
                          </a>
                        </td>
                        <td>{a.kind}</td>
                        <td className="num">{a.attempt}</td>
                        <td>
                          <StateBadge state={a.state} />
                          {a.error && <span className="muted small"> {a.error}</span>}
                        </td>
                        <td>
                          <StateBadge state={a.jobState} />
                        </td>
                        <td>{ago(a.offeredAt)}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableWrap>
            )}
            <details>
              <summary>Latest signed advert</summary>
              <Json value={p.advert} label="Latest signed advert (JSON)" />
            </details>
          </>
        )}
      </Loaded>
    </section>
  );
}

/** Whether this process offers the provider work, and how much at once. */
function placementText(p: ProviderPlacementDto): string {
  if (!p.connected) return 'not connected to this process: no offers from it';
  const breaker =
    p.breaker === 'closed'
      ? `breaker closed (${p.breakerLosses} recent losses)`
      : p.breaker === 'open'
        ? `breaker open until ${p.breakerOpenUntil ? when(p.breakerOpenUntil) : '?'}: no offers`
        : 'breaker half-open: one offer to try it';
  const slots =
    p.advertisedSlots === null || p.advertisedSlots === undefined
      ? ''
      : ` of ${p.advertisedSlots} advertised`;
  return `${breaker} · ${Math.min(p.concurrencyWindow, p.advertisedSlots ?? p.concurrencyWindow)} jobs at once${slots} (slow start)`;
}
