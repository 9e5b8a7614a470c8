import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { DomainError } from '../common/domain-error.js';
import { LOGGER } from '../logging/logger.js';
import { SettingsRepository } from './settings.repository.js';
import {
  SETTING_KEYS,
  SETTING_SCHEMAS,
  isSettingKey,
  type SettingKey,
  type SettingValue,
  type SettingValues,
} from './settings.js';

export interface SettingView<K extends SettingKey = SettingKey> {
  key: K;
  value: SettingValue<K>;
  /** The configured value, used when no override is stored. */
  default: SettingValue<K>;
  overridden: boolean;
  updatedBy: string | null;
  updatedAt: Date | null;
}

/** How long a process trusts its copy of the settings; other processes see a change within this. */
export const SETTINGS_CACHE_MS = 1_000;

/**
 * Run-time settings (default verification policy, fee, epoch length): the configured default,
 * overridden by a row of the Setting table that an admin wrote. Reads are served from a copy
 * refreshed at most every second, so hot paths (dispatch, submission) may call `get` freely.
 */
@Injectable()
export class SettingsService {
  private cache: {
    at: number;
    rows: Map<SettingKey, { value: unknown; updatedBy: string | null; updatedAt: Date }>;
  } | null = null;
  private loading: Promise<void> | null = null;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly repo: SettingsRepository,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** The configured defaults (environment), before any override. */
  defaults(): SettingValues {
    const c = this.config;
    return {
      verification: SETTING_SCHEMAS.verification.parse({
        mode: c.VERIFICATION_MODE,
        ...(c.VERIFICATION_MODE === 'redundant' ? { k: c.VERIFICATION_K } : {}),
        canaryRate: c.CANARY_RATE,
      }),
      platformFeeBps: c.PLATFORM_FEE_BPS,
      epochSeconds: c.EPOCH_SECONDS ?? (c.DEV_BOOTSTRAP ? 20 : 3600),
    };
  }

  async get<K extends SettingKey>(key: K): Promise<SettingValue<K>> {
    const rows = await this.rows();
    const row = rows.get(key);
    if (row) {
      const parsed = SETTING_SCHEMAS[key].safeParse(row.value);
      if (parsed.success) return parsed.data as SettingValue<K>;
      this.logger.warn({ key }, 'stored setting no longer valid; using the configured default');
    }
    return this.defaults()[key];
  }

  async list(): Promise<SettingView[]> {
    const rows = await this.rows();
    const defaults = this.defaults();
    const views: SettingView[] = [];
    for (const key of SETTING_KEYS) {
      const row = rows.get(key);
      views.push({
        key,
        value: await this.get(key),
        default: defaults[key],
        overridden: row !== undefined,
        updatedBy: row?.updatedBy ?? null,
        updatedAt: row?.updatedAt ?? null,
      } as SettingView);
    }
    return views;
  }

  /** Validates and stores an override; `null` removes it (back to the configured default). */
  async set(key: string, value: unknown, updatedBy: string | null): Promise<SettingView> {
    if (!isSettingKey(key)) {
      throw new DomainError('NOT_FOUND', `no setting "${key}"; settings are ${SETTING_KEYS.join(', ')}`);
    }
    if (value === null) {
      await this.repo.remove(key);
    } else {
      const parsed = SETTING_SCHEMAS[key].safeParse(value);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const where = issue.path.length > 0 ? `${key}.${issue.path.join('.')}` : key;
        throw new DomainError('VALIDATION_FAILED', `${where}: ${issue.message}`);
      }
      await this.repo.put(key, parsed.data, updatedBy);
    }
    this.cache = null;
    this.logger.info({ key, updatedBy }, 'setting changed');
    const view = (await this.list()).find((v) => v.key === key);
    if (!view) throw new Error(`setting ${key} vanished`);
    return view;
  }

  private async rows(): Promise<
    Map<SettingKey, { value: unknown; updatedBy: string | null; updatedAt: Date }>
  > {
    if (this.cache && Date.now() - this.cache.at < SETTINGS_CACHE_MS) return this.cache.rows;
    this.loading ??= this.repo
      .all()
      .then((all) => {
        const rows = new Map<SettingKey, { value: unknown; updatedBy: string | null; updatedAt: Date }>();
        for (const r of all) if (isSettingKey(r.key)) rows.set(r.key, r);
        this.cache = { at: Date.now(), rows };
      })
      .finally(() => {
        this.loading = null;
      });
    await this.loading;
    return this.cache?.rows ?? new Map();
  }
}
