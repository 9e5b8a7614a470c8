import { Inject, Injectable, type OnModuleDestroy } from '@nestjs/common';
import type { Logger } from 'pino';
import { Subject, defer, filter, finalize, takeUntil, type Observable } from 'rxjs';
import { LOGGER } from '../logging/logger.js';
import { AuthRepository } from './auth.repository.js';
import type { Principal } from './principal.js';

/** How often the credentials of open streams are re-read (what another process revoked shows within this). */
export const CREDENTIAL_RECHECK_MS = 500;

export interface Revocation {
  sessionId?: string;
  apiKeyId?: string;
}

/**
 * Live streams end when the credential they were opened with does: a revoked API key, a signed-out
 * or expired session, a session whose key was revoked. A revocation made by this process ends its
 * streams at once; one made elsewhere (another API process, the database) within
 * CREDENTIAL_RECHECK_MS: while streams are open, one sweep re-reads all their credentials (two
 * queries, however many streams).
 */
@Injectable()
export class CredentialWatch implements OnModuleDestroy {
  private readonly revocations = new Subject<Revocation>();
  /** Open streams per credential: `k:<api key id>` or `s:<session id>`. */
  private readonly watched = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private sweeping = false;

  constructor(
    private readonly repo: AuthRepository,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onModuleDestroy(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** This process revoked a credential: its streams end now. */
  revoked(revocation: Revocation): void {
    this.revocations.next(revocation);
  }

  /** `source` until `principal`'s credential is revoked or expires; then the stream completes. */
  until<T>(principal: Principal, source: Observable<T>): Observable<T> {
    const key = principal.sessionId
      ? `s:${principal.sessionId}`
      : principal.apiKeyId
        ? `k:${principal.apiKeyId}`
        : null;
    if (key === null) return source;
    const mine = (r: Revocation): boolean =>
      (r.sessionId !== undefined && r.sessionId === principal.sessionId) ||
      (r.apiKeyId !== undefined && r.apiKeyId === principal.apiKeyId);
    return defer(() => {
      this.watch(key);
      return source.pipe(
        takeUntil(this.revocations.pipe(filter(mine))),
        finalize(() => this.unwatch(key)),
      );
    });
  }

  private watch(key: string): void {
    this.watched.set(key, (this.watched.get(key) ?? 0) + 1);
    if (!this.timer) {
      this.timer = setInterval(() => void this.sweep(), CREDENTIAL_RECHECK_MS);
      this.timer.unref();
    }
  }

  private unwatch(key: string): void {
    const left = (this.watched.get(key) ?? 1) - 1;
    if (left > 0) this.watched.set(key, left);
    else this.watched.delete(key);
    if (this.watched.size === 0) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  private async sweep(): Promise<void> {
    if (this.sweeping || this.watched.size === 0) return;
    this.sweeping = true;
    try {
      const keys = [...this.watched.keys()];
      const dead = await this.repo.deadCredentials(
        keys.filter((k) => k.startsWith('k:')).map((k) => k.slice(2)),
        keys.filter((k) => k.startsWith('s:')).map((k) => k.slice(2)),
        new Date(),
      );
      for (const apiKeyId of dead.apiKeyIds) this.revocations.next({ apiKeyId });
      for (const sessionId of dead.sessionIds) this.revocations.next({ sessionId });
    } catch (err) {
      this.logger.warn({ err }, 'could not re-read the credentials of open streams');
    } finally {
      this.sweeping = false;
    }
  }
}
