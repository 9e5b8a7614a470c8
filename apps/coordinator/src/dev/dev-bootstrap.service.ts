import { Inject, Injectable } from '@nestjs/common';
import { Wallet } from 'ethers';
import type { Logger } from 'pino';
import {
  ANVIL_DEV_KEYS,
  MAX_STORED_SPENDING_CAP,
  signSpendingCap,
  type SpendingCapDomain,
} from '@gpumesh/rewards';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { APP_CONFIG, DEV_PLATFORM_ACCOUNT_ADDRESS, type AppConfig } from '../config/config.js';
import { AccountsRepository } from '../accounts/accounts.repository.js';
import { SPENDING_CAP_DOMAIN } from '../accounts/spending-cap-domain.js';
import { SpendingCapsService } from '../accounts/spending-caps.service.js';
import { DEV_PLATFORM_INDEX } from '../settlement/settlement-chain.js';
import { AuthService } from '../auth/auth.service.js';
import { DomainError } from '../common/domain-error.js';
import { DEVELOPER_SCOPES, API_SCOPES } from '../auth/principal.js';
import { LedgerRepository } from '../ledger/ledger.repository.js';
import { LedgerAccounts } from '../ledger/accounts.js';
import { mintPostings } from '../ledger/postings.js';
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
 * The spending cap the dev developer and the dev platform account sign on the local dev chain: the
 * largest the escrow records (their deposits bound them anyway; a real developer signs a real bound).
 */
const DEV_SPENDING_CAP = MAX_STORED_SPENDING_CAP;

/** How long `ensure` waits for the dev developer's escrow deposit to be credited on the dev chain. */
const DEV_DEPOSIT_WAIT_MS = 60_000;

/**
 * `npm start` dev mode: a developer account with dev credits and an admin account, each with an API
 * key. The keys are kept in `<data dir>/dev-keys.json` (mode 0600) so restarts print the same ones.
 *
 * Where the credits come from depends on the money: with settlement, only from escrow deposits (the
 * local dev chain deposits DEV_CREDITS for the dev developer and funds the platform account when it
 * is deployed; `ensure` waits until the deposit is credited), never minted off chain, so every base
 * unit spent is debited on chain. Without settlement (no chain: play money) the credits, and the
 * platform account's for canaries, are minted in the ledger.
 *
 * On the local dev chain both the dev developer and the platform account (anvil keys, public) sign a
 * spending cap, stored as a developer's PUT /v1/account/spending-cap would store it; the settler
 * submits it on chain before it first debits them.
 */
@Injectable()
export class DevBootstrapService {
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly accounts: AccountsRepository,
    private readonly auth: AuthService,
    private readonly ledger: LedgerRepository,
    private readonly spendingCaps: SpendingCapsService,
    @Inject(SPENDING_CAP_DOMAIN) private readonly capDomain: SpendingCapDomain | null,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async ensure(): Promise<DevCredentials> {
    await this.signDevSpendingCaps();
    const file = join(this.config.DATA_DIR, 'dev-keys.json');
    const saved = await this.readSaved(file);
    if (saved && (await this.stillValid(saved))) return saved;

    const developer = await this.accounts.upsertByAddress(DEV_DEVELOPER_ADDRESS, 'DEVELOPER');
    const admin = await this.accounts.upsertByAddress(DEV_ADMIN_ADDRESS, 'ADMIN');
    if (this.config.SETTLEMENT_ENABLED) {
      if (!this.config.CHAIN_RPC_URL) await this.awaitDevDeposit(developer.id);
    } else {
      const platform = await this.accounts.upsertByAddress(this.config.platformAccountAddress, 'DEVELOPER');
      await this.mintOnce(developer.id);
      await this.mintOnce(platform.id);
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

  /** The dev chain's dev developer and platform account sign their spending caps (once; idempotent). */
  private async signDevSpendingCaps(): Promise<void> {
    const domain = this.capDomain;
    if (!domain || !this.config.SETTLEMENT_ENABLED || this.config.CHAIN_RPC_URL) return;
    const signers = [ANVIL_DEV_KEYS[0]];
    if (this.config.platformAccountAddress === DEV_PLATFORM_ACCOUNT_ADDRESS) {
      signers.push(ANVIL_DEV_KEYS[DEV_PLATFORM_INDEX]);
    }
    for (const key of signers) {
      const wallet = new Wallet(key);
      const account = await this.accounts.upsertByAddress(wallet.address, 'DEVELOPER');
      const signed = await signSpendingCap(wallet, domain, DEV_SPENDING_CAP);
      await this.spendingCaps.raise(account.id, account.address, {
        cap: signed.cap.toString(),
        signature: signed.signature,
      });
    }
  }

  /** Off-chain play money (no settlement): DEV_CREDITS for an account that has none. */
  private async mintOnce(accountId: string): Promise<void> {
    const available = LedgerAccounts.available(accountId);
    const balance = (await this.ledger.balances([available])).get(available) ?? 0n;
    if (balance > 0n) return;
    const mint = mintPostings(accountId, this.config.DEV_CREDITS);
    await this.ledger.postStandalone(mint.kind, mint.postings);
  }

  /** Waits until the dev chain's escrow deposit for the dev developer is credited (the escrow watcher). */
  private async awaitDevDeposit(accountId: string): Promise<void> {
    const available = LedgerAccounts.available(accountId);
    const reserved = LedgerAccounts.reserved(accountId);
    const until = Date.now() + DEV_DEPOSIT_WAIT_MS;
    for (;;) {
      const balances = await this.ledger.balances([available, reserved]);
      if ((balances.get(available) ?? 0n) + (balances.get(reserved) ?? 0n) > 0n) return;
      if (Date.now() > until) {
        this.logger.warn('the dev developer escrow deposit is not credited yet; jobs get 402 until it is');
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
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
