import { useState } from 'react';
import type { AdminSessionDto, AuditDto, EpochDto, RewardEpochDto } from '@gpumesh/sdk/types';
import { ApiError, get, post } from '../api';
import { ActionButton, CsvDownload, Empty, Loaded, StateBadge, TableWrap } from '../components';
import { shortId, tokens, when } from '../format';
import { useLoad } from '../hooks';

/**
 * An epoch as the page shows it: the settlement API's (`RewardEpochDto`, with totals and funding) or,
 * without settlement, the admin view's (`EpochDto`, which has neither).
 */
type EpochRow = EpochDto & Partial<Pick<RewardEpochDto, 'total' | 'funded' | 'blockedReason'>>;

/** The settlement API's public epoch list (with totals and files) when it exists, else the admin view. */
async function loadEpochs(): Promise<{ epochs: EpochRow[]; files: boolean }> {
  try {
    const rows = await get<RewardEpochDto[]>('/v1/rewards/epochs');
    return { epochs: rows.map(({ epoch, ...r }) => ({ ...r, id: epoch })), files: true };
  } catch (err) {
    if (!(err instanceof ApiError) || err.status !== 404) throw err;
    return { epochs: await get<EpochDto[]>('/v1/admin/epochs'), files: false };
  }
}

export function EpochsPage({ session }: { session: AdminSessionDto }): React.JSX.Element {
  const load = useLoad(loadEpochs, [], 10_000);
  const [audit, setAudit] = useState<AuditDto | null>(null);
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
            run={async () => setAudit(await post<AuditDto>('/v1/admin/audit'))}
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
            <TableWrap label="Epochs table">
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
            </TableWrap>
          )
        }
      </Loaded>
    </section>
  );
}
