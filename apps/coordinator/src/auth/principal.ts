import type { AccountRole } from '#prisma';

export const API_SCOPES = ['jobs:read', 'jobs:write', 'artifacts:write', 'account:read', 'admin'] as const;
export type ApiScope = (typeof API_SCOPES)[number];
export const DEVELOPER_SCOPES: ApiScope[] = ['jobs:read', 'jobs:write', 'artifacts:write', 'account:read'];

/** Who is calling: resolved from a session token or an API key by the auth guard. */
export interface Principal {
  accountId: string;
  address: string;
  role: AccountRole;
  scopes: ReadonlySet<ApiScope>;
  via: 'session' | 'api-key';
  apiKeyId?: string;
  /** The session's id when `via` is `session` (a SIWE session or a dashboard cookie). */
  sessionId?: string;
}
