import { Inject, Injectable } from '@nestjs/common';
import { SiweMessage } from 'siwe';
import type { AccountRole, ApiKey } from '#prisma';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { DomainError } from '../common/domain-error.js';
import { AccountsRepository } from '../accounts/accounts.repository.js';
import { CredentialWatch } from './credential-watch.service.js';
import { AuthRepository } from './auth.repository.js';
import {
  API_KEY_PREFIX,
  SESSION_PREFIX,
  newApiKey,
  newNonce,
  newSessionToken,
  sha256Hex,
} from './secrets.js';
import { API_SCOPES, DEVELOPER_SCOPES, type ApiScope, type Principal } from './principal.js';

interface CachedPrincipal {
  principal: Principal | null;
  expiresAt: number;
}

const MAX_CACHE_ENTRIES = 10_000;

@Injectable()
export class AuthService {
  /** Hash → principal, so a hot API key costs no database round trip; bounded and short-lived. */
  private readonly cache = new Map<string, CachedPrincipal>();

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly repo: AuthRepository,
    private readonly accounts: AccountsRepository,
    private readonly credentials: CredentialWatch,
  ) {}

  async issueNonce(): Promise<{
    nonce: string;
    expiresAt: Date;
    domain: string;
    chainId: number;
    uri: string;
  }> {
    const nonce = newNonce();
    const expiresAt = new Date(Date.now() + this.config.NONCE_TTL_SECONDS * 1000);
    await this.repo.createNonce(nonce, expiresAt);
    return {
      nonce,
      expiresAt,
      domain: this.config.siweDomain,
      chainId: this.config.CHAIN_ID,
      uri: this.publicUrl(),
    };
  }

  /** Verifies an EIP-4361 message + signature and opens a session for its address. */
  async signIn(
    message: string,
    signature: string,
  ): Promise<{ token: string; expiresAt: Date; accountId: string; address: string }> {
    let siwe: SiweMessage;
    try {
      siwe = new SiweMessage(message);
    } catch (err) {
      throw new DomainError(
        'VALIDATION_FAILED',
        `message: not a valid Sign-In with Ethereum message (${errorText(err)})`,
      );
    }
    if (siwe.domain !== this.config.siweDomain) {
      throw new DomainError(
        'INVALID_SIGNATURE',
        `message: domain must be ${this.config.siweDomain}, got ${siwe.domain}`,
      );
    }
    if (siwe.chainId !== this.config.CHAIN_ID) {
      throw new DomainError(
        'INVALID_SIGNATURE',
        `message: chain id must be ${this.config.CHAIN_ID}, got ${siwe.chainId}`,
      );
    }
    const verified = await siwe.verify(
      { signature, domain: this.config.siweDomain },
      { suppressExceptions: true },
    );
    if (!verified.success) {
      throw new DomainError(
        'INVALID_SIGNATURE',
        `signature: ${verified.error?.type ?? 'does not match the message'}`,
      );
    }
    if (!(await this.repo.consumeNonce(siwe.nonce, new Date()))) {
      throw new DomainError(
        'INVALID_NONCE',
        'message: nonce is unknown, expired or already used; request a new one',
      );
    }
    const role: AccountRole = this.isAdminAddress(siwe.address) ? 'ADMIN' : 'DEVELOPER';
    const account = await this.accounts.upsertByAddress(siwe.address, role);
    const { token, hash } = newSessionToken();
    const expiresAt = new Date(Date.now() + this.config.SESSION_TTL_SECONDS * 1000);
    await this.repo.createSession(account.id, hash, expiresAt);
    return { token, expiresAt, accountId: account.id, address: account.address };
  }

  /** Creates an API key for the caller's account. Admin keys need an admin account. The secret is returned once. */
  async createApiKey(
    principal: Principal,
    input: { name: string; role?: AccountRole; scopes?: string[] },
  ): Promise<{ key: ApiKey; secret: string }> {
    const role = input.role ?? 'DEVELOPER';
    if (role === 'ADMIN' && principal.role !== 'ADMIN') {
      throw new DomainError('FORBIDDEN', 'role: only an admin account can create admin keys');
    }
    const scopes = this.resolveScopes(role, input.scopes);
    // a key never mints a key that may do more than itself
    const beyond = scopes.filter((scope) => !principal.scopes.has(scope));
    if (beyond.length > 0) {
      throw new DomainError(
        'FORBIDDEN',
        `scopes: this credential cannot grant ${beyond.join(', ')}; it has ${[...principal.scopes].join(', ')}`,
        { missing: beyond },
      );
    }
    return this.createKeyForAccount(principal.accountId, input.name, role, scopes);
  }

  async createKeyForAccount(
    accountId: string,
    name: string,
    role: AccountRole,
    scopes: ApiScope[],
  ): Promise<{ key: ApiKey; secret: string }> {
    const { secret, hash, prefix } = newApiKey();
    const key = await this.repo.createApiKey({ accountId, name, prefix, keyHash: hash, role, scopes });
    return { key, secret };
  }

  listApiKeys(principal: Principal): Promise<ApiKey[]> {
    return this.repo.listApiKeys(principal.accountId);
  }

  async revokeApiKey(principal: Principal, id: string): Promise<ApiKey> {
    const scope = principal.role === 'ADMIN' ? null : principal.accountId;
    const key = await this.repo.revokeApiKey(id, scope, new Date());
    if (!key) throw new DomainError('API_KEY_NOT_FOUND', `api key ${id} not found`);
    this.cache.delete(key.keyHash);
    this.credentials.revoked({ apiKeyId: key.id });
    return key;
  }

  /** Resolves a bearer token to a principal; throws 401 with a reason when it is not valid. */
  async authenticate(token: string): Promise<Principal> {
    if (!token.startsWith(API_KEY_PREFIX) && !token.startsWith(SESSION_PREFIX)) {
      throw new DomainError(
        'INVALID_API_KEY',
        `credentials are not a gpumesh API key (${API_KEY_PREFIX}…) or session token (${SESSION_PREFIX}…)`,
      );
    }
    const hash = sha256Hex(token);
    const now = Date.now();
    const cached = this.cache.get(hash);
    if (cached && cached.expiresAt > now) {
      if (!cached.principal)
        throw new DomainError('INVALID_API_KEY', 'API key or session is unknown, revoked or expired');
      return cached.principal;
    }
    const principal = token.startsWith(API_KEY_PREFIX)
      ? await this.fromApiKey(hash)
      : await this.fromSession(hash, now);
    this.remember(hash, principal, now);
    if (!principal)
      throw new DomainError('INVALID_API_KEY', 'API key or session is unknown, revoked or expired');
    return principal;
  }

  private async fromApiKey(hash: string): Promise<Principal | null> {
    const key = await this.repo.findApiKeyByHash(hash);
    if (!key || key.revokedAt) return null;
    void this.repo.touchApiKey(key.id, new Date()).catch(() => undefined);
    return {
      accountId: key.accountId,
      address: key.account.address,
      role: key.role,
      scopes: new Set(key.scopes.filter((s): s is ApiScope => (API_SCOPES as readonly string[]).includes(s))),
      via: 'api-key',
      apiKeyId: key.id,
    };
  }

  private async fromSession(hash: string, now: number): Promise<Principal | null> {
    const session = await this.repo.findSessionByHash(hash);
    if (!session || session.revokedAt || session.expiresAt.getTime() <= now) return null;
    const scopes = session.account.role === 'ADMIN' ? [...API_SCOPES] : DEVELOPER_SCOPES;
    return {
      accountId: session.accountId,
      address: session.account.address,
      role: session.account.role,
      scopes: new Set(scopes),
      via: 'session',
      sessionId: session.id,
    };
  }

  private remember(hash: string, principal: Principal | null, now: number): void {
    if (this.config.API_KEY_CACHE_TTL_MS === 0) return;
    if (this.cache.size >= MAX_CACHE_ENTRIES) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(hash, { principal, expiresAt: now + this.config.API_KEY_CACHE_TTL_MS });
  }

  private resolveScopes(role: AccountRole, requested: string[] | undefined): ApiScope[] {
    const allowed: readonly ApiScope[] = role === 'ADMIN' ? API_SCOPES : DEVELOPER_SCOPES;
    if (!requested || requested.length === 0) return [...allowed];
    const invalid = requested.filter((s) => !(allowed as readonly string[]).includes(s));
    if (invalid.length > 0) {
      throw new DomainError(
        'VALIDATION_FAILED',
        `scopes: ${invalid.join(', ')} not allowed for a ${role.toLowerCase()} key; allowed: ${allowed.join(', ')}`,
      );
    }
    return requested as ApiScope[];
  }

  private isAdminAddress(address: string): boolean {
    return this.config.ADMIN_ADDRESSES.includes(address.toLowerCase());
  }

  private publicUrl(): string {
    return this.config.PUBLIC_URL ?? `http://${this.config.siweDomain}`;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
