import { useState } from 'react';
import { ApiError, get, post, type Audit, type Epoch, type Session } from '../api';
import { ActionButton, CsvDownload, Empty, Loaded, StateBadge } from '../components';
import { shortId, tokens, when } from '../format';
import { useLoad } from '../hooks';

interface RewardsEpoch {
  epoch: number;
  state: string;
  startedAt: string;
  closedAt: string | null;
  root: string | null;
  fileHash: string | null;
  txHash: string | null;
  total: string | null;
  funded?: string | null;
  blockedReason?: string | null;
}

/** The settlement API's public epoch list (with totals and files) when it exists, else the admin view. */
async function loadEpochs(): Promise<{ epochs: Epoch[]; files: boolean }> {
  try {
    const rows = await get<RewardsEpoch[]>('/v1/rewards/epochs');
    return { epochs: rows.map((r) => ({ ...r, id: r.epoch })), files: true };
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    return { epochs: await get<Epoch[]>('/v1/admin/epochs'), files: false };
  }
}

export function EpochsPage({ session }: { session: Session }): React.JSX.Element {
  const load = useLoad(loadEpochs, [], 10_000);
  const [audit, setAudit] = useState<Audit | null>(null);
  return (
    <section aria-labelledby="epochs-title">
      <div className="page-head">
        <h1 id="epochs-title">Epochs &amp; payouts</h1>
        <span className="downloads">
          <CsvDownload table="epochs" label="epochs" />
          <CsvDownload table="ledger" label="the ledger" />
        </span>
      </div>
      {session.canAct && (
        <div className="actions">
          <ActionButton
            label="Audit the ledger"
            run={async () => setAudit(await post<Audit>('/v1/admin/audit'))}
          />
        </div>
      )}
      {audit && (
        <div className={`card audit ${audit.ok ? 'ok' : 'bad'}`} role="status" data-testid="audit">
          <strong>{audit.ok ? 'Ledger audit passed' : 'Ledger audit found problems'}</strong>
          <span className="muted small"> at {when(audit.at)}</span>
          <ul>
            <li>
              {audit.entries} entries, summing to {audit.entriesTotal}
            </li>
            <li>{audit.unbalancedTransactions} unbalanced transactions</li>
            <li>{audit.mismatchedBalances} balances that differ from their entries</li>
            <li>{audit.negativeDeveloperBalances} negative developer balances</li>
            {audit.problems.map((p) => (
              <li key={p} className="bad">
                {p}
              </li>
            ))}
          </ul>
        </div>
      )}
      <Loaded load={load} what="epochs" retry={load.reload}>
        {({ epochs, files }) =>
          epochs.length === 0 ? (
            <Empty>
              No reward epoch has been opened yet. Provider earnings accrue in the ledger and are rolled into
              an epoch (a Merkle root posted on chain) by settlement.
            </Empty>
          ) : (
            <div className="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Epoch</th>
                    <th scope="col">State</th>
                    <th scope="col">Started</th>
                    <th scope="col">Closed</th>
                    <th scope="col">Paid out</th>
                    <th scope="col">Merkle root</th>
                    <th scope="col">Transaction</th>
                    <th scope="col">Claims</th>
                  </tr>
                </thead>
                <tbody>
                  {epochs.map((e) => (
                    <tr key={e.id}>
                      <td className="num">{e.id}</td>
                      <td>
                        <StateBadge state={e.state} />
                      </td>
                      <td>{when(e.startedAt)}</td>
                      <td>{when(e.closedAt)}</td>
                      <td className="num">{e.total ? tokens(e.total) : '—'}</td>
                      <td className="mono" title={e.root ?? undefined}>
                        {e.root ? shortId(e.root, 10) : '—'}
                      </td>
                      <td className="mono" title={e.txHash ?? undefined}>
                        {e.txHash ? shortId(e.txHash, 10) : '—'}
                      </td>
                      <td>
                        {e.state === 'FINALIZED'
                          ? 'claimable'
                          : e.state === 'FUNDING'
                            ? `funding: ${tokens(e.funded ?? '0')} of ${tokens(e.total ?? '0')}`
                            : e.state === 'POSTED'
                              ? 'posted, awaiting finality'
                              : 'not yet'}
                        {e.blockedReason && (
                          <div className="bad small" role="alert">
                            {e.blockedReason}
                          </div>
                        )}
                        {files && e.fileHash && (
                          <>
                            {' · '}
                            <a href={`/v1/rewards/epochs/${e.id}/file`} download={`epoch-${e.id}.json`}>
                              epoch file
                            </a>
                          </>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )
        }
      </Loaded>
    </section>
  );
}
