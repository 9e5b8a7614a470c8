import { useState } from 'react';
import type { AdminSessionDto, SlashDto } from '@gpumesh/sdk/types';
import { get, post } from '../api';
import { ActionButton, Empty, Loaded, StateBadge, TableWrap } from '../components';
import { ago, shortId, tokens, when } from '../format';
import { useLoad } from '../hooks';
import { href } from '../router';

const STATES = ['', 'PROPOSED', 'FROZEN', 'SENT', 'EXECUTED', 'CANCELLING', 'CANCELLED', 'EXPIRED', 'FAILED'];

/** States an admin may cancel: the review window (before and after the chain froze the stake). */
const CANCELLABLE = ['PROPOSED', 'FROZEN'];

/** Where the slashed tokens went, or go. */
function Destination({ slash }: { slash: SlashDto }): React.JSX.Element {
  if (typeof slash.compensated === 'string' && typeof slash.burnt === 'string') {
    return (
      <>
        {tokens(slash.compensated)} to developers, {tokens(slash.burnt)} burnt
      </>
    );
  }
  if (slash.beneficiaries.length === 0)
    return <span className="muted">burnt (no developer to compensate)</span>;
  return (
    <span className="muted" title={slash.beneficiaries.map((b) => b.account).join('\n')}>
      {slash.beneficiaries.length} developer{slash.beneficiaries.length === 1 ? '' : 's'}
    </span>
  );
}

/** The last transaction of the slash: cancel, execution or proposal (freeze). */
function lastTx(s: SlashDto): { hash: string; label: string } | null {
  if (s.cancelTxHash) return { hash: s.cancelTxHash, label: 'cancel' };
  if (s.txHash) return { hash: s.txHash, label: 'execute' };
  if (s.proposeTxHash) return { hash: s.proposeTxHash, label: 'freeze' };
  return null;
}

/** Slash proposals with their state, amount, evidence and transactions; admins cancel them during review. */
export function SlashTable({
  slashes,
  session,
  onChanged,
  showPeer,
}: {
  slashes: SlashDto[];
  session: AdminSessionDto;
  onChanged: () => void;
  showPeer?: boolean;
}): React.JSX.Element {
  return (
    <TableWrap label="Slash proposals">
      <table data-testid="slashes-table">
        <caption className="sr-only">Slash proposals, newest first</caption>
        <thead>
          <tr>
            <th scope="col">Proposed</th>
            {showPeer && <th scope="col">Provider</th>}
            <th scope="col">State</th>
            <th scope="col">Amount (tokens)</th>
            <th scope="col">Goes to</th>
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
              <td>
                <Destination slash={s} />
              </td>
              <td>{s.reason}</td>
              <td className="mono" title={s.evidenceHash}>
                <a
                  href={`/v1/evidence/${encodeURIComponent(s.evidenceHash)}`}
                  target="_blank"
                  rel="noreferrer"
                >
                  {shortId(s.evidenceHash, 10)}
                </a>
              </td>
              <td>{s.executedAt ? when(s.executedAt) : when(s.executeAfter)}</td>
              <td className="mono" title={lastTx(s)?.hash}>
                {lastTx(s) ? `${lastTx(s)!.label} ${shortId(lastTx(s)!.hash, 10)}` : '—'}
              </td>
              {session.canAct && (
                <td>
                  {CANCELLABLE.includes(s.state) ? (
                    <ActionButton
                      label="Cancel slash"
                      danger
                      confirm="Cancel this slash proposal? The provider's frozen stake is released."
                      run={(reason) =>
                        post(`/v1/admin/slashes/${encodeURIComponent(s.id)}/cancel`, { reason })
                      }
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
    </TableWrap>
  );
}

export function SlashesPage({ session }: { session: AdminSessionDto }): React.JSX.Element {
  const [state, setState] = useState('');
  const load = useLoad(
    () => get<SlashDto[]>(`/v1/admin/slashes${state ? `?state=${state}` : ''}`),
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
        stake on ProviderStaking at once, citing the hash of the evidence bundle (public: click it). The
        proposal freezes the stake, so unbonding cannot dodge it. After the review window the coordinator
        executes it: the slashed tokens compensate the developers whose jobs the provider ran in the last 7
        days (paid into their escrow balance), or are burnt when there are none. Cancel a proposal during its
        review window to unfreeze the stake.
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
