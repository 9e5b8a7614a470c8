import { Inject, Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { LOGGER } from '../logging/logger.js';
import { VerificationRepository } from './verification.repository.js';

const SWEEP_EVERY_MS = 5_000;
const SWEEP_BATCH = 1_000;

/** The hold of verified credits: VERIFICATION_HOLD_SECONDS, else 0 with DEV_BOOTSTRAP, else 3600. */
export function holdSeconds(config: AppConfig): number {
  return config.VERIFICATION_HOLD_SECONDS ?? (config.DEV_BOOTSTRAP ? 0 : 3600);
}

/**
 * Vests held provider credits: a verified credit waits `holdSeconds` in `provider:<peer>:held`
 * (long enough for canaries and tie-breaks to catch a cheater and re-verify its jobs), then moves
 * to `provider:<peer>:earned`, where the next epoch pays it. A banned provider's credits never vest
 * on their own; re-verification (VerifierService) reverses the wrong ones.
 */
@Injectable()
export class VestingService implements OnApplicationBootstrap, OnApplicationShutdown {
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly repo: VerificationRepository,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  onApplicationBootstrap(): void {
    if (this.config.ROLE === 'api' || holdSeconds(this.config) === 0) return;
    this.timer = setInterval(() => void this.sweep(), SWEEP_EVERY_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Vests every held credit past its hold; returns how many vested. */
  async sweep(now = new Date()): Promise<number> {
    if (this.running) return 0;
    this.running = true;
    let vested = 0;
    try {
      const before = new Date(now.getTime() - holdSeconds(this.config) * 1000);
      for (const credit of await this.repo.vestable(before, SWEEP_BATCH)) {
        if (await this.repo.vest(credit)) vested += 1;
      }
    } catch (err) {
      this.logger.warn({ err }, 'vesting sweep failed; the next one retries');
    } finally {
      this.running = false;
    }
    return vested;
  }
}
