import { useCallback, useEffect, useState } from 'react';
import type { AdminSessionDto } from '@gpumesh/sdk/types';
import { ApiError, del, get, post, setUnauthenticatedHandler } from './api';
import { Loading } from './components';
import { useFocusHeadingOnNavigation } from './hooks';
import { href, useRoute } from './router';
import { OverviewPage } from './pages/Overview';
import { ProviderPage, ProvidersPage } from './pages/Providers';
import { JobPage, JobsPage } from './pages/Jobs';
import { AccountPage, AccountsPage } from './pages/Accounts';
import { AuditLogPage } from './pages/AuditLog';
import { EpochsPage } from './pages/Epochs';
import { SettingsPage } from './pages/Settings';
import { SlashesPage } from './pages/Slashes';
import { SignIn } from './pages/SignIn';

const NAV = [
  ['overview', 'Overview'],
  ['providers', 'Providers'],
  ['jobs', 'Jobs'],
  ['accounts', 'Accounts'],
  ['slashes', 'Slashes'],
  ['epochs', 'Epochs & payouts'],
  ['settings', 'Settings'],
  ['audit-log', 'Audit log'],
] as const;

type Auth =
  { state: 'checking' } | { state: 'out'; reason?: string } | { state: 'in'; session: AdminSessionDto };

export function App(): React.JSX.Element {
  const [auth, setAuth] = useState<Auth>({ state: 'checking' });
  const route = useRoute();

  useEffect(() => {
    get<AdminSessionDto>('/v1/admin/session').then(
      (session) => setAuth({ state: 'in', session }),
      (err: unknown) =>
        setAuth({
          state: 'out',
          reason: err instanceof ApiError && err.status !== 401 ? err.message : undefined,
        }),
    );
    setUnauthenticatedHandler(() => setAuth({ state: 'out', reason: 'Your session ended; sign in again.' }));
    return () => setUnauthenticatedHandler(null);
  }, []);

  const signIn = useCallback(async (apiKey: string) => {
    const session = await post<AdminSessionDto>('/v1/admin/session', { apiKey });
    setAuth({ state: 'in', session });
  }, []);

  const signOut = useCallback(async () => {
    await del('/v1/admin/session').catch(() => undefined);
    setAuth({ state: 'out' });
  }, []);

  const page = route.parts[0] ?? 'overview';
  useFocusHeadingOnNavigation(route.parts.join('/'));
  useEffect(() => {
    const label = NAV.find(([key]) => key === page)?.[1] ?? 'Dashboard';
    document.title = `${label} · gpumesh admin`;
  }, [page]);

  if (auth.state === 'checking') {
    return (
      <main className="center">
        <Loading what="your session" />
      </main>
    );
  }
  if (auth.state === 'out') return <SignIn onSignIn={signIn} notice={auth.reason} />;

  const session = auth.session;
  const id = route.parts[1];
  let content: React.JSX.Element;
  switch (page) {
    case 'providers':
      // keyed by id: another provider's page starts from nothing (no state carried over)
      content = id ? (
        <ProviderPage key={id} peerId={id} session={session} />
      ) : (
        <ProvidersPage query={route.query} />
      );
      break;
    case 'jobs':
      // keyed by id: another job's page starts with an empty live timeline
      content = id ? <JobPage key={id} id={id} session={session} /> : <JobsPage query={route.query} />;
      break;
    case 'accounts':
      content = id ? <AccountPage key={id} id={id} session={session} /> : <AccountsPage />;
      break;
    case 'epochs':
      content = <EpochsPage session={session} />;
      break;
    case 'slashes':
      content = <SlashesPage session={session} />;
      break;
    case 'settings':
      content = <SettingsPage session={session} />;
      break;
    case 'audit-log':
      content = <AuditLogPage query={route.query} />;
      break;
    default:
      content = <OverviewPage />;
  }

  return (
    <div className="layout">
      {/* the routes live in the hash, so following "#main" would navigate: focus the content instead */}
      <a
        className="skip"
        href="#main"
        onClick={(event) => {
          event.preventDefault();
          document.getElementById('main')?.focus();
        }}
      >
        Skip to content
      </a>
      <header className="topbar">
        <a className="brand" href={href('overview')}>
          gpumesh <span>admin</span>
        </a>
        <nav aria-label="Sections">
          <ul>
            {NAV.map(([key, label]) => (
              <li key={key}>
                <a href={href(key)} aria-current={page === key ? 'page' : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div className="who">
          <span title={session.address} className="mono">
            {session.address.slice(0, 6)}…{session.address.slice(-4)}
          </span>
          <span className="role">{session.canAct ? 'admin' : 'read-only'}</span>
          <button type="button" className="secondary" onClick={() => void signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {content}
      </main>
    </div>
  );
}
