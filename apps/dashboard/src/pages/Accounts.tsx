import type { AdminAccountDetailDto, AdminAccountDto, AdminSessionDto } from '@gpumesh/sdk/types';
import { del, get } from '../api';
import { ActionButton, Empty, Loaded, StateBadge, TableWrap } from '../components';
import { ago, shortId, tokens, when } from '../format';
import { useLoad } from '../hooks';
import { href } from '../router';

export function AccountsPage(): React.JSX.Element {
  const load = useLoad(() => get<AdminAccountDto[]>('/v1/admin/accounts'), [], 5000);
  return (
    <section aria-labelledby="accounts-title">
      <div className="page-head">
        <h1 id="accounts-title">Accounts</h1>
      </div>
      <Loaded load={load} what="accounts" retry={load.reload}>
        {(accounts) =>
          accounts.length === 0 ? (
            <Empty>No accounts yet.</Empty>
          ) : (
            <TableWrap label="Accounts table">
              <table data-testid="accounts-table">
                <thead>
                  <tr>
                    <th scope="col">Address</th>
                    <th scope="col">Role</th>
                    <th scope="col">Balance</th>
                    <th scope="col">Reserved</th>
                    <th scope="col">Open jobs</th>
                    <th scope="col">Jobs</th>
                    <th scope="col">API keys</th>
                    <th scope="col">Since</th>
                  </tr>
                </thead>
                <tbody>
                  {accounts.map((a) => (
                    <tr key={a.id}>
                      <td>
                        <a className="mono" href={href('accounts', a.id)}>
                          {shortId(a.address, 8)}
                        </a>
                      </td>
                      <td>{a.role.toLowerCase()}</td>
                      <td className="num">{tokens(a.balance)}</td>
                      <td className="num">{tokens(a.reserved)}</td>
                      <td className="num">{a.openJobs}</td>
                      <td className="num">{a.jobs}</td>
                      <td className="num">{a.apiKeys}</td>
                      <td>{ago(a.createdAt)}</td>
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

export function AccountPage({ id, session }: { id: string; session: AdminSessionDto }): React.JSX.Element {
  const load = useLoad(
    () => get<AdminAccountDetailDto>(`/v1/admin/accounts/${encodeURIComponent(id)}`),
    [id],
  );
  return (
    <section aria-labelledby="account-title">
      <p>
        <a href={href('accounts')}>← Accounts</a>
      </p>
      <Loaded load={load} what="account" retry={load.reload}>
        {(a) => (
          <>
            <div className="page-head">
              <h1 id="account-title" className="mono wrap">
                {a.address}
              </h1>
              <span className="badge">{a.role.toLowerCase()}</span>
            </div>
            <dl className="card kv">
              <dt>Balance</dt>
              <dd>{tokens(a.balance)} tokens</dd>
              <dt>Reserved for running jobs</dt>
              <dd>{tokens(a.reserved)} tokens</dd>
              <dt>Jobs</dt>
              <dd>
                <a href={`#/jobs?accountId=${a.id}`}>
                  {a.jobs} jobs ({a.openJobs} open)
                </a>
              </dd>
              <dt>Account id</dt>
              <dd className="mono wrap">{a.id}</dd>
            </dl>
            <h2>API keys</h2>
            {a.keys.length === 0 ? (
              <Empty>This account has no API keys.</Empty>
            ) : (
              <TableWrap label="API keys">
                <table data-testid="keys-table">
                  <thead>
                    <tr>
                      <th scope="col">Name</th>
                      <th scope="col">Prefix</th>
                      <th scope="col">Role</th>
                      <th scope="col">Scopes</th>
                      <th scope="col">Created</th>
                      <th scope="col">Last used</th>
                      <th scope="col">Status</th>
                    </tr>
                  </thead>
                  <tbody>
                    {a.keys.map((k) => (
                      <tr key={k.id}>
                        <td>{k.name}</td>
                        <td className="mono">{k.prefix}…</td>
                        <td>{k.role.toLowerCase()}</td>
                        <td>{k.scopes.join(', ')}</td>
                        <td>{when(k.createdAt)}</td>
                        <td>{k.lastUsedAt ? ago(k.lastUsedAt) : 'never'}</td>
                        <td>
                          {k.revokedAt ? (
                            <StateBadge state="revoked" />
                          ) : session.canAct ? (
                            <ActionButton
                              label={`Revoke ${k.name}`}
                              danger
                              confirm="Revoke this API key? Every request with it fails from now on."
                              run={(reason) =>
                                del(`/v1/admin/api-keys/${encodeURIComponent(k.id)}`, { reason })
                              }
                              onDone={load.reload}
                            />
                          ) : (
                            <StateBadge state="active" />
                          )}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </TableWrap>
            )}
          </>
        )}
      </Loaded>
    </section>
  );
}
