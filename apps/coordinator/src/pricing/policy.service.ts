import { Injectable } from '@nestjs/common';
import { AccountsRepository } from '../accounts/accounts.repository.js';
import { SettingsService } from '../settings/settings.service.js';
import type { VerificationPolicy } from '../settings/settings.js';
import { resolvePolicy, storedPolicy, type PolicySource } from './policy.js';

/** How long a process trusts its copy of an account's default policy. */
const ACCOUNT_DEFAULT_TTL_MS = 1_000;

/** Resolves the policy of a submission: request, spec alias, account default, platform default. */
@Injectable()
export class VerificationPolicyService {
  private readonly accountDefaults = new Map<string, { at: number; policy: VerificationPolicy | null }>();

  constructor(
    private readonly accounts: AccountsRepository,
    private readonly settings: SettingsService,
  ) {}

  async resolve(
    accountId: string,
    requested: unknown,
    specRedundancy: number | undefined,
  ): Promise<{ policy: VerificationPolicy; source: PolicySource }> {
    const [account, platform] = await Promise.all([
      this.accountDefault(accountId),
      this.settings.get('verification'),
    ]);
    return resolvePolicy({ requested, specRedundancy, account, platform });
  }

  async accountDefault(accountId: string): Promise<VerificationPolicy | null> {
    const cached = this.accountDefaults.get(accountId);
    if (cached && Date.now() - cached.at < ACCOUNT_DEFAULT_TTL_MS) return cached.policy;
    const row = await this.accounts.findById(accountId);
    const policy = storedPolicy(row?.verificationDefault ?? null);
    if (this.accountDefaults.size > 10_000) this.accountDefaults.clear();
    this.accountDefaults.set(accountId, { at: Date.now(), policy });
    return policy;
  }

  /** Stores (or with null clears) an account's default; this process sees it at once. */
  async setAccountDefault(accountId: string, policy: VerificationPolicy | null): Promise<void> {
    await this.accounts.setVerificationDefault(accountId, policy);
    this.accountDefaults.set(accountId, { at: Date.now(), policy });
  }

  platformDefault(): Promise<VerificationPolicy> {
    return this.settings.get('verification');
  }
}
