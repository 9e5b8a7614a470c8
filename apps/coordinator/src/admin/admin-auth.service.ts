import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { DomainError } from '../common/domain-error.js';
import { AuthService } from '../auth/auth.service.js';
import { API_SCOPES, type Principal } from '../auth/principal.js';
import { SESSION_PREFIX, newSessionToken, sha256Hex } from '../auth/secrets.js';
import { CredentialWatch } from '../auth/credential-watch.service.js';
import { AdminSessionsRepository } from './admin-sessions.repository.js';
import {
  ADMIN_COOKIE,
  CSRF_HEADER,
  checkCsrf,
  clearedSessionCookie,
  readCookie,
  sessionCookie,
} from './admin-session.js';
import type { AdminSessionDto } from './dto/admin.dto.js';

/** Where a route sets or clears the session cookie. */
export interface CookieJar {
  secure: boolean;
  headers: Record<string, string | string[] | undefined>;
  set(value: string): void;
}

export type AdminPrincipal = Principal & { cookieExpiresAt?: Date };

/**
 * Dashboard sign-in: an admin API key (with the `admin` scope) is exchanged for a session whose
 * token travels only in an httpOnly, SameSite=Strict cookie; the database keeps its SHA-256.
 */
@Injectable()
export class AdminAuthService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly auth: AuthService,
    private readonly sessions: AdminSessionsRepository,
    private readonly credentials: CredentialWatch,
  ) {}

  async signIn(apiKey: string, jar: CookieJar): Promise<AdminSessionDto> {
    checkCsrf(jar);
    const principal = await this.auth.authenticate(apiKey.trim());
    if (principal.via !== 'api-key') {
      throw new DomainError('INVALID_API_KEY', 'apiKey: sign in with an API key (gmk_…)');
    }
    if (principal.role !== 'ADMIN' || !principal.scopes.has('admin')) {
      throw new DomainError(
        'FORBIDDEN',
        'apiKey: this is not an admin key (it needs the admin role and scope)',
      );
    }
    const { token, hash } = newSessionToken();
    const ttl = this.config.SESSION_TTL_SECONDS;
    const expiresAt = new Date(Date.now() + ttl * 1000);
    if (!principal.apiKeyId) throw new Error('an API-key principal without its key id');
    await this.sessions.create(principal.accountId, hash, expiresAt, principal.apiKeyId);
    jar.set(sessionCookie(token, ttl, jar.secure));
    return describe({
      ...principal,
      via: 'session',
      scopes: new Set(API_SCOPES),
      cookieExpiresAt: expiresAt,
    });
  }

  async signOut(jar: CookieJar): Promise<{ signedOut: true }> {
    checkCsrf(jar);
    const token = readCookie(jar.headers.cookie, ADMIN_COOKIE);
    const sessionId = token ? await this.sessions.revoke(sha256Hex(token), new Date()) : null;
    if (sessionId) this.credentials.revoked({ sessionId });
    jar.set(clearedSessionCookie(jar.secure));
    return { signedOut: true };
  }

  /** The principal of a dashboard cookie: read from the database every time, so sign-out is immediate. */
  async fromCookie(token: string): Promise<AdminPrincipal> {
    const session = token.startsWith(SESSION_PREFIX) ? await this.sessions.find(sha256Hex(token)) : null;
    if (!session || session.revokedAt || session.expiresAt.getTime() <= Date.now()) {
      throw new DomainError('UNAUTHENTICATED', 'the dashboard session is unknown, expired or signed out');
    }
    if (session.keyRevoked) {
      throw new DomainError(
        'UNAUTHENTICATED',
        'the API key this dashboard session was opened with is revoked',
      );
    }
    const admin = session.account.role === 'ADMIN';
    return {
      accountId: session.accountId,
      address: session.account.address,
      role: session.account.role,
      scopes: new Set(admin ? API_SCOPES : []),
      via: 'session',
      sessionId: session.id,
      cookieExpiresAt: session.expiresAt,
    };
  }

  fromBearer(token: string): Promise<Principal> {
    return this.auth.authenticate(token);
  }

  describe(principal: AdminPrincipal): AdminSessionDto {
    return describe(principal);
  }
}

function describe(principal: AdminPrincipal): AdminSessionDto {
  return {
    accountId: principal.accountId,
    address: principal.address,
    role: principal.role,
    scopes: [...principal.scopes],
    via: principal.cookieExpiresAt ? 'cookie' : principal.via,
    canAct: principal.role === 'ADMIN' && principal.scopes.has('admin'),
    expiresAt: principal.cookieExpiresAt?.toISOString() ?? null,
    csrfHeader: CSRF_HEADER,
  };
}
