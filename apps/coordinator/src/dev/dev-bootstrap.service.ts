import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { AccountsRepository } from '../accounts/accounts.repository.js';
import { AuthService } from '../auth/auth.service.js';
import { DomainError } from '../common/domain-error.js';
import { DEVELOPER_SCOPES, API_SCOPES } from '../auth/principal.js';
import { LedgerRepository } from '../ledger/ledger.repository.js';
import { LedgerAccounts } from '../ledger/ledger-accounts.js';
import { LOGGER } from '../logging/logger.js';

/** Well-known local-chain dev addresses (anvil's first two accounts); never used outside dev mode. */
export const DEV_DEVELOPER_ADDRESS = '0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266';
export const DEV_ADMIN_ADDRESS = '0x70997970c51812dc3a010c7d01b50e0d17dc79c8';

export interface DevCredentials {
  developerAddress: string;
  developerKey: string;
  adminAddress: string;
  adminKey: string;
  credits: string;
}

/**
 * `npm start` dev mode: a developer account with dev credits and an admin account, each with an API
 * key. The keys are kept in `<data dir>/dev-keys.json` (mode 0600) so restarts print the same ones.
 */
@Injectable()
export class DevBootstrapService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly accounts: AccountsRepository,
    private readonly auth: AuthService,
    private readonly ledger: LedgerRepository,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async ensure(): Promise<DevCredentials> {
    const file = join(this.config.DATA_DIR, 'dev-keys.json');
    const saved = await this.readSaved(file);
    if (saved && (await this.stillValid(saved))) return saved;

    const developer = await this.accounts.upsertByAddress(DEV_DEVELOPER_ADDRESS, 'DEVELOPER');
    const admin = await this.accounts.upsertByAddress(DEV_ADMIN_ADDRESS, 'ADMIN');
    const available = LedgerAccounts.available(developer.id);
    const balance = (await this.ledger.balances([available])).get(available) ?? 0n;
    if (balance === 0n) {
      await this.ledger.postStandalone('mint', [
        { account: LedgerAccounts.mint, amount: -this.config.DEV_CREDITS },
        { account: available, amount: this.config.DEV_CREDITS },
      ]);
    }
    const devKey = await this.auth.createKeyForAccount(
      developer.id,
      'dev developer key',
      'DEVELOPER',
      DEVELOPER_SCOPES,
    );
    const adminKey = await this.auth.createKeyForAccount(admin.id, 'dev admin key', 'ADMIN', [...API_SCOPES]);
    const credentials: DevCredentials = {
      developerAddress: developer.address,
      developerKey: devKey.secret,
      adminAddress: admin.address,
      adminKey: adminKey.secret,
      credits: this.config.DEV_CREDITS.toString(),
    };
    await mkdir(this.config.DATA_DIR, { recursive: true });
    await writeFile(file, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
    await chmod(file, 0o600);
    return credentials;
  }

  private async readSaved(file: string): Promise<DevCredentials | null> {
    try {
      return JSON.parse(await readFile(file, 'utf8')) as DevCredentials;
    } catch {
      return null;
    }
  }

  /**
   * Whether the saved keys still authenticate. Only a definite "unknown or revoked key" answer
   * replaces them: a passing database error is retried (else a restart would print new keys).
   */
  private async stillValid(saved: DevCredentials): Promise<boolean> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.auth.authenticate(saved.developerKey);
        await this.auth.authenticate(saved.adminKey);
        return true;
      } catch (err) {
        if (err instanceof DomainError) {
          this.logger.warn(
            { reason: err.message },
            'the saved dev keys no longer authenticate; issuing new ones',
          );
          return false;
        }
        if (attempt >= 5) throw err;
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
  }
}
