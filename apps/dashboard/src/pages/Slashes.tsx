import { useState } from 'react';
import { get, post, type Session, type Slash } from '../api';
import { ActionButton, Empty, Loaded, StateBadge } from '../components';
import { ago, shortId, tokens, when } from '../format';
import { useLoad } from '../hooks';
import { href } from '../router';

const STATES = ['', 'PROPOSED', 'SENT', 'EXECUTED', 'CANCELLED', 'FAILED'];

/** Slash proposals with their state, amount, evidence and transaction; admins cancel PROPOSED ones. */
export function SlashTable({
  slashes,
  session,
  onChanged,
  showPeer,
}: {
  slashes: Slash[];
  session: Session;
  onChanged: () => void;
  showPeer?: boolean;
}): React.JSX.Element {
  return (
    <div className="table-wrap">
      <table data-testid="slashes-table">
        <caption className="sr-only">Slash proposals, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Proposed</th>
            {showPeer && <th scope="col">Provider</th>}
            <th scope="col">State</th>
            <th scope="col">Amount (tokens)</th>
            <th scope="col">Reason</th>
            <th scope="col">Evidence</th>
            <th scope="col">Executes</th>
            <th scope="col">Transaction</th>
            {session.canAct && <th scope="col">Review</th>}
          </tr>
        </thead>
        <tbody>
          {slashes.map((s) => (
            <tr key={s.id} data-slash={s.id} data-state={s.state}>
              <td title={when(s.createdAt)}>{ago(s.createdAt)}</td>
              {showPeer && (
                <td>
                  <a className="mono" href={href('providers', s.peerId)}>
                    {shortId(s.peerId)}
                  </a>
                </td>
              )}
              <td>
                <StateBadge state={s.state} />
                {s.reviewedBy && (
                  <div className="muted small" title={s.reviewedBy}>
                    by {shortId(s.reviewedBy, 6)}
                  </div>
                )}
                {s.error && <div className="muted small">{s.error}</div>}
              </td>
              <td className="num">{tokens(s.amount)}</td>
              <td>{s.reason}</td>
              <td className="mono" title={s.evidenceHash}>
                {shortId(s.evidenceHash, 10)}
              </td>
              <td>{s.executedAt ? when(s.executedAt) : when(s.executeAfter)}</td>
              <td className="mono" title={s.txHash ?? undefined}>
                {s.txHash ? shortId(s.txHash, 10) : '—'}
              </td>
              {session.canAct && (
                <td>
                  {s.state === 'PROPOSED' ? (
                    <ActionButton
                      label="Cancel slash"
                      danger
                      run={() => post(`/v1/admin/slashes/${encodeURIComponent(s.id)}/cancel`)}
                      onDone={onChanged}
                    />
                  ) : (
                    <span className="muted small">—</span>
                  )}
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

export function SlashesPage({ session }: { session: Session }): React.JSX.Element {
  const [state, setState] = useState('');
  const load = useLoad(
    () => get<Slash[]>(`/v1/admin/slashes${state ? `?state=${state}` : ''}`),
    [state],
    5000,
  );
  return (
    <section aria-labelledby="slashes-title">
      <div className="page-head">
        <h1 id="slashes-title">Slashes</h1>
      </div>
      <p className="muted">
        When verification catches a provider returning wrong results it bans it and proposes a slash of its
        stake, citing the evidence bundle's hash. After the review window the coordinator executes it on
        ProviderStaking; the slashed tokens go to the staking contract's treasury. Cancel a proposal during
        its review window to keep it off the chain.
      </p>
      <div className="filters">
        <label>
          State
          <select value={state} onChange={(e) => setState(e.target.value)}>
            {STATES.map((s) => (
              <option key={s} value={s}>
                {s ? s.toLowerCase() : 'all'}
              </option>
            ))}
          </select>
        </label>
      </div>
      <Loaded load={load} what="slash proposals" retry={load.reload}>
        {(slashes) =>
          slashes.length === 0 ? (
            <Empty>
              {state
                ? `No ${state.toLowerCase()} slash proposals.`
                : 'No slash proposals: no provider has been caught returning wrong results.'}
            </Empty>
          ) : (
            <SlashTable slashes={slashes} session={session} onChanged={load.reload} showPeer />
          )
        }
      </Loaded>
    </section>
  );
}
