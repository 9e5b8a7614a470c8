import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import type { AdminAuditEntry, Prisma } from '#prisma';
import type { Principal } from '../auth/principal.js';
import { DomainError } from '../common/domain-error.js';
import { LOGGER } from '../logging/logger.js';
import { AuditLogRepository } from './audit-log.repository.js';
import type { AuditLogEntryDto, AuditLogPageDto, AuditLogQueryDto } from './dto/admin.dto.js';

/** Every action an admin can take, as the audit log names it. */
export type AuditAction =
  | 'provider.ban'
  | 'provider.unban'
  | 'provider.drain'
  | 'provider.undrain'
  | 'job.cancel'
  | 'api_key.revoke'
  | 'slash.cancel'
  | 'setting.change';

/**
 * The admin audit log: each admin action, once done, is appended (actor, action, target, reason,
 * the target before and after) and logged as an `admin action` line. Reading it: GET /v1/admin/audit-log.
 */
@Injectable()
export class AuditLogService {
  constructor(
    private readonly repo: AuditLogRepository,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  async record(
    principal: Principal,
    action: AuditAction,
    target: string,
    reason: string,
    before?: Prisma.InputJsonObject,
    after?: Prisma.InputJsonObject,
  ): Promise<void> {
    const entry = {
      actor: principal.address,
      apiKeyId: principal.apiKeyId,
      action,
      target,
      reason: reason.trim(),
      before,
      after,
    };
    this.logger.info({ audit: entry }, `admin action: ${action} ${target}`);
    try {
      await this.repo.append(entry);
    } catch (err) {
      // The action is done: say so loudly, with everything the entry held, rather than hide it.
      this.logger.error({ err, audit: entry }, 'could not append an admin action to the audit log');
      throw err;
    }
  }

  async list(query: AuditLogQueryDto): Promise<AuditLogPageDto> {
    const limit = query.limit ?? 100;
    const since = query.since ? new Date(query.since) : undefined;
    const until = query.until ? new Date(query.until) : undefined;
    if (since && until && since >= until)
      throw new DomainError('VALIDATION_FAILED', 'since: must be before until');
    const rows = await this.repo.list({
      action: query.action,
      target: query.target,
      actor: query.actor?.toLowerCase(),
      since,
      until,
      beforeId: query.cursor ? BigInt(query.cursor) : undefined,
      limit: limit + 1,
    });
    const page = rows.slice(0, limit);
    return {
      items: page.map(mapEntry),
      nextCursor: rows.length > limit && page.length > 0 ? page[page.length - 1]!.id.toString() : null,
    };
  }
}

function mapEntry(e: AdminAuditEntry): AuditLogEntryDto {
  return {
    id: e.id.toString(),
    at: e.at.toISOString(),
    actor: e.actor,
    apiKeyId: e.apiKeyId,
    action: e.action,
    target: e.target,
    reason: e.reason,
    before: (e.before as Record<string, unknown> | null) ?? null,
    after: (e.after as Record<string, unknown> | null) ?? null,
  };
}
