import {
  Body,
  Controller,
  Delete,
  Get,
  Headers,
  HttpCode,
  Param,
  Post,
  Put,
  Query,
  Res,
  Sse,
  StreamableFile,
  type MessageEvent,
  type PipeTransform,
} from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { EMPTY, type Observable } from 'rxjs';
import { negotiateMediaType } from '../common/accept.js';
import { ApiErrors, ApiEventStream, ApiJsonOrCsv } from '../common/api-docs.js';
import { parseLastEventId } from '../events/sse/sse-resume.js';
import { CurrentPrincipal } from '../auth/auth.decorators.js';
import { CredentialWatch } from '../auth/credential-watch.service.js';
import type { Principal } from '../auth/principal.js';
import { ApiKeyDto } from '../auth/dto/auth.dto.js';
import { DomainError } from '../common/domain-error.js';
import { uuidParam } from '../common/pipes.js';
import { AdminAction, AdminRoute } from './admin.guard.js';
import { AdminService } from './admin.service.js';
import { AdminStatsService } from './admin-stats.service.js';
import { AuditLogService } from './audit-log.service.js';
import { StatsHistoryService } from './stats-history.service.js';
import { ExportService, type CsvExport, type ExportTable } from './export.service.js';
import type { JobFilter } from './export.repository.js';
import type { JobState } from '../jobs/job-state.js';
import { CSV_MEDIA_TYPE } from '../common/csv.js';
import {
  AdminActionDto,
  AdminAccountDetailDto,
  AdminAccountDto,
  AdminJobDetailDto,
  AdminJobDto,
  AdminJobPageDto,
  AdminJobsQueryDto,
  AdminProviderDetailDto,
  AdminProviderDto,
  AdminProvidersQueryDto,
  AdminSlashesQueryDto,
  AuditDto,
  AuditLogPageDto,
  AuditLogQueryDto,
  EpochDto,
  ExportQueryDto,
  HistoryDto,
  HistoryQueryDto,
  OverviewDto,
  PutSettingDto,
  SettingDto,
  SlashDto,
  UnbanDto,
} from './dto/admin.dto.js';

/** Validates a `:peerId` path parameter (base58 libp2p peer id). */
const peerIdParam: PipeTransform<string, string> = {
  transform: (value: string) => {
    if (!/^[1-9A-HJ-NP-Za-km-z]{20,100}$/.test(value)) {
      throw new DomainError('VALIDATION_FAILED', 'peerId: must be a libp2p peer id');
    }
    return value;
  },
};

@ApiTags('admin')
@AdminRoute()
@Controller('v1/admin')
export class AdminController {
  constructor(
    private readonly admin: AdminService,
    private readonly stats: AdminStatsService,
    private readonly auditLogs: AuditLogService,
    private readonly credentials: CredentialWatch,
    private readonly historyService: StatsHistoryService,
    private readonly exports: ExportService,
  ) {}

  @Get('overview')
  @ApiOperation({
    summary: 'Marketplace figures: providers, GPUs, throughput, rates, queue, latency, earnings',
  })
  @ApiOkResponse({ type: OverviewDto })
  overview(): Promise<OverviewDto> {
    return this.stats.overview();
  }

  @Sse('stream')
  @ApiOperation({ summary: 'Server-sent events: the overview as a `stats` event every ~2 s' })
  @ApiEventStream('a `stats` event (data: the Overview as JSON) every ~2 s')
  stream(@CurrentPrincipal() principal: Principal): Observable<MessageEvent> {
    // ends when the session or key it was opened with is signed out or revoked
    return this.credentials.until(principal, this.stats.stream());
  }

  @Get('history')
  @ApiOperation({
    summary:
      'Marketplace history from the stored minute rows (kept HISTORY_RETENTION_DAYS, default 8; minutes missing are rebuilt from the stored jobs at startup, without provider figures): providers, slots, queue, running, jobs submitted/completed/failed',
  })
  @ApiOkResponse({ type: HistoryDto })
  @ApiErrors({ 400: 'VALIDATION_FAILED: range is not 30m, 24h or 7d' })
  history(@Query() query: HistoryQueryDto): Promise<HistoryDto> {
    return this.historyService.history(query.range ?? '24h');
  }

  @Get('export/:table')
  @ApiOperation({
    summary:
      'Every job (optionally filtered as the jobs list), ledger entry or epoch (table: jobs, ledger or epochs) of a time window as CSV (RFC 4180, streamed, oldest first), for spreadsheets and accounting',
  })
  @ApiProduces(CSV_MEDIA_TYPE)
  @ApiOkResponse({
    description: 'a CSV file with a header row (sent as an attachment)',
    content: { [CSV_MEDIA_TYPE]: { schema: { type: 'string', example: 'id,state,kind\r\n' } } },
  })
  @ApiErrors({
    400: 'VALIDATION_FAILED: no such table, a malformed time, format or filter, or a job filter on another table',
  })
  export(
    @Param('table') table: string,
    @Query() query: ExportQueryDto,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): StreamableFile {
    return csvFile(
      reply,
      this.exports.export(table, {
        since: query.since ? new Date(query.since) : undefined,
        until: query.until ? new Date(query.until) : undefined,
        ...jobFilter(query),
      }),
    );
  }

  @Get('providers')
  @ApiOperation({ summary: 'Every provider (all statuses unless filtered)' })
  @ApiOkResponse({ type: [AdminProviderDto] })
  providers(@Query() query: AdminProvidersQueryDto): Promise<AdminProviderDto[]> {
    return this.admin.providers(query);
  }

  @Get('providers/:peerId')
  @ApiOperation({ summary: 'A provider: advert, hardware, benchmark, reputation, attempts, earnings' })
  @ApiOkResponse({ type: AdminProviderDetailDto })
  @ApiErrors({ 404: 'NOT_FOUND: no such provider' })
  provider(@Param('peerId', peerIdParam) peerId: string): Promise<AdminProviderDetailDto> {
    return this.admin.provider(peerId);
  }

  @Post('providers/:peerId/ban')
  @HttpCode(200)
  @AdminAction()
  @ApiOperation({
    summary: 'Ban a provider: it gets no new work (running attempts finish); its reputation is left as it is',
  })
  @ApiOkResponse({ type: AdminProviderDto })
  @ApiErrors({
    400: 'VALIDATION_FAILED: a reason is required',
    404: 'NOT_FOUND: no such provider',
    409: 'ILLEGAL_TRANSITION: already banned',
  })
  ban(
    @CurrentPrincipal() principal: Principal,
    @Param('peerId', peerIdParam) peerId: string,
    @Body() body: AdminActionDto,
  ): Promise<AdminProviderDto> {
    return this.admin.banProvider(principal, peerId, body.reason);
  }

  @Post('providers/:peerId/unban')
  @HttpCode(200)
  @AdminAction()
  @ApiOperation({
    summary:
      'Lift a ban; the reputation is kept, restored or set to probation (see reputation). A drain is lifted with undrain',
  })
  @ApiOkResponse({ type: AdminProviderDto })
  @ApiErrors({
    400: 'VALIDATION_FAILED: a reason is required',
    404: 'NOT_FOUND: no such provider',
    409: 'ILLEGAL_TRANSITION: the provider is not banned',
  })
  unban(
    @CurrentPrincipal() principal: Principal,
    @Param('peerId', peerIdParam) peerId: string,
    @Body() body: UnbanDto,
  ): Promise<AdminProviderDto> {
    return this.admin.unbanProvider(principal, peerId, body.reason, body.reputation);
  }

  @Post('providers/:peerId/drain')
  @HttpCode(200)
  @AdminAction()
  @ApiOperation({ summary: 'Drain a provider for maintenance: no new work, running jobs finish, no penalty' })
  @ApiOkResponse({ type: AdminProviderDto })
  @ApiErrors({
    400: 'VALIDATION_FAILED: a reason is required',
    404: 'NOT_FOUND: no such provider',
    409: 'ILLEGAL_TRANSITION: banned or already draining',
  })
  drain(
    @CurrentPrincipal() principal: Principal,
    @Param('peerId', peerIdParam) peerId: string,
    @Body() body: AdminActionDto,
  ): Promise<AdminProviderDto> {
    return this.admin.setDraining(principal, peerId, true, body.reason);
  }

  @Post('providers/:peerId/undrain')
  @HttpCode(200)
  @AdminAction()
  @ApiOperation({ summary: 'End a drain: the provider takes new work again; its reputation is untouched' })
  @ApiOkResponse({ type: AdminProviderDto })
  @ApiErrors({
    400: 'VALIDATION_FAILED: a reason is required',
    404: 'NOT_FOUND: no such provider',
    409: 'ILLEGAL_TRANSITION: not draining',
  })
  undrain(
    @CurrentPrincipal() principal: Principal,
    @Param('peerId', peerIdParam) peerId: string,
    @Body() body: AdminActionDto,
  ): Promise<AdminProviderDto> {
    return this.admin.setDraining(principal, peerId, false, body.reason);
  }

  @Get('slashes')
  @ApiOperation({
    summary: 'Slash proposals (newest first): executed on ProviderStaking after their review window',
  })
  @ApiOkResponse({ type: [SlashDto] })
  slashes(@Query() query: AdminSlashesQueryDto): Promise<SlashDto[]> {
    return this.admin.slashes(query);
  }

  @Post('slashes/:id/cancel')
  @HttpCode(200)
  @AdminAction()
  @ApiOperation({ summary: 'Cancel a slash proposal during its review window (PROPOSED only)' })
  @ApiOkResponse({ type: SlashDto })
  @ApiErrors({
    400: 'VALIDATION_FAILED: a reason is required',
    404: 'NOT_FOUND: no such slash proposal',
    409: 'ILLEGAL_TRANSITION: past its review window or not cancellable',
  })
  cancelSlash(
    @CurrentPrincipal() principal: Principal,
    @Param('id', uuidParam('id')) id: string,
    @Body() body: AdminActionDto,
  ): Promise<SlashDto> {
    return this.admin.cancelSlash(principal, id, body.reason);
  }

  @Get('jobs')
  @ApiOperation({ summary: 'Jobs of every account; filter by state, account, provider, kind' })
  @ApiJsonOrCsv(
    AdminJobPageDto,
    'every job the filters match (not a page: cursor and limit do not apply) as GET /v1/admin/export/jobs gives it',
  )
  jobs(
    @Query() query: AdminJobsQueryDto,
    @Headers('accept') accept: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<AdminJobPageDto> | StreamableFile {
    return this.orCsv(accept, reply, 'jobs', query) ?? this.admin.jobList(query);
  }

  @Get('jobs/:id')
  @ApiOperation({ summary: 'A job with its event timeline, attempts and receipts, verdict and cost' })
  @ApiOkResponse({ type: AdminJobDetailDto })
  @ApiErrors({ 404: 'JOB_NOT_FOUND' })
  job(@Param('id', uuidParam('id')) id: string): Promise<AdminJobDetailDto> {
    return this.admin.job(id);
  }

  @Sse('jobs/:id/events')
  @ApiOperation({
    summary:
      "Server-sent events: the job's events, live, until it ends; resumes after Last-Event-ID (or ?lastEventId=) like /v1/jobs/:id/events",
  })
  @ApiEventStream('one event per job event (data: a JobEvent as JSON, id: its event id), until the job ends')
  @ApiResponse({
    status: 204,
    description: 'resumed after the terminal event and nothing followed: the stream is over',
  })
  @ApiErrors({
    400: 'VALIDATION_FAILED: Last-Event-ID is not the id of an event of this job',
    404: 'JOB_NOT_FOUND',
  })
  async jobEvents(
    @CurrentPrincipal() principal: Principal,
    @Param('id', uuidParam('id')) id: string,
    @Headers('last-event-id') lastEventIdHeader: string | undefined,
    @Query('lastEventId') lastEventIdQuery: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<Observable<MessageEvent>> {
    const events = await this.admin.jobEvents(id, parseLastEventId(lastEventIdHeader, lastEventIdQuery));
    if (events) return this.credentials.until(principal, events);
    void reply.status(204); // the client has the whole stream: an EventSource stops reconnecting
    return EMPTY;
  }

  @Post('jobs/:id/cancel')
  @HttpCode(200)
  @AdminAction()
  @ApiOperation({ summary: "Cancel any account's unfinished job; its reservation is released" })
  @ApiOkResponse({ type: AdminJobDto })
  @ApiErrors({
    400: 'VALIDATION_FAILED: a reason is required',
    404: 'JOB_NOT_FOUND',
    409: 'ILLEGAL_TRANSITION: the job has already finished',
  })
  cancel(
    @CurrentPrincipal() principal: Principal,
    @Param('id', uuidParam('id')) id: string,
    @Body() body: AdminActionDto,
  ): Promise<AdminJobDto> {
    return this.admin.cancelJob(principal, id, body.reason);
  }

  @Get('accounts')
  @ApiOperation({ summary: 'Accounts with balances, reservations and key counts' })
  @ApiOkResponse({ type: [AdminAccountDto] })
  accounts(): Promise<AdminAccountDto[]> {
    return this.admin.accounts();
  }

  @Get('accounts/:id')
  @ApiOperation({ summary: 'An account with its API keys' })
  @ApiOkResponse({ type: AdminAccountDetailDto })
  @ApiErrors({ 404: 'NOT_FOUND: no such account' })
  account(@Param('id', uuidParam('id')) id: string): Promise<AdminAccountDetailDto> {
    return this.admin.account(id);
  }

  @Delete('api-keys/:id')
  @AdminAction()
  @ApiOperation({ summary: 'Revoke any API key' })
  @ApiOkResponse({ type: ApiKeyDto, description: 'the revoked key' })
  @ApiErrors({ 400: 'VALIDATION_FAILED: a reason is required', 404: 'API_KEY_NOT_FOUND' })
  revokeKey(
    @CurrentPrincipal() principal: Principal,
    @Param('id', uuidParam('id')) id: string,
    @Body() body: AdminActionDto,
  ): Promise<ApiKeyDto> {
    return this.admin.revokeKey(principal, id, body.reason);
  }

  @Get('audit-log')
  @ApiOperation({
    summary:
      'The admin audit log, newest first: who banned, drained, revoked, cancelled or changed what, why, before and after',
  })
  @ApiOkResponse({ type: AuditLogPageDto })
  @ApiErrors({ 400: 'VALIDATION_FAILED: a filter or the cursor is malformed' })
  auditLog(@Query() query: AuditLogQueryDto): Promise<AuditLogPageDto> {
    return this.auditLogs.list(query);
  }

  @Get('epochs')
  @ApiOperation({ summary: 'Reward epochs: roots, transaction hashes, states' })
  @ApiJsonOrCsv([EpochDto], 'every epoch as GET /v1/admin/export/epochs gives it')
  epochs(
    @Headers('accept') accept: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<EpochDto[]> | StreamableFile {
    return this.orCsv(accept, reply, 'epochs', {}) ?? this.admin.epochs();
  }

  @Post('audit')
  @HttpCode(200)
  @AdminAction()
  @ApiOperation({ summary: 'Audit the ledger: entries balance, balances match entries, none overdrawn' })
  @ApiOkResponse({ type: AuditDto })
  audit(): Promise<AuditDto> {
    return this.admin.audit();
  }

  @Get('settings')
  @ApiOperation({
    summary: 'Run-time settings (verification policy, fee, epoch length) and the fixed configuration',
  })
  @ApiOkResponse({ type: [SettingDto] })
  settings(): Promise<SettingDto[]> {
    return this.admin.settings();
  }

  @Put('settings/:key')
  @AdminAction()
  @ApiOperation({ summary: 'Change a run-time setting (validated; null returns to the configured default)' })
  @ApiOkResponse({ type: SettingDto })
  @ApiErrors({ 400: 'VALIDATION_FAILED: the value or the reason', 404: 'NOT_FOUND: no such setting' })
  setSetting(
    @CurrentPrincipal() principal: Principal,
    @Param('key') key: string,
    @Body() body: PutSettingDto,
  ): Promise<SettingDto> {
    return this.admin.setSetting(principal, key, body.value, body.reason);
  }

  /**
   * The CSV export of `table` (the filters of `query`) when the Accept header prefers text/csv to
   * JSON, else null: a list route answers what its export route does, from the same code.
   */
  private orCsv(
    accept: string | undefined,
    reply: FastifyReply,
    table: ExportTable,
    query: JobFilterQuery,
  ): StreamableFile | null {
    if (negotiateMediaType(accept, ['application/json', CSV_MEDIA_TYPE]) !== CSV_MEDIA_TYPE) return null;
    return csvFile(reply, this.exports.export(table, jobFilter(query)));
  }
}

/** The job filters a jobs list or export query carries. */
interface JobFilterQuery {
  state?: string;
  kind?: string;
  accountId?: string;
  providerId?: string;
}

function jobFilter(query: JobFilterQuery): Omit<JobFilter, 'since' | 'until'> {
  return {
    states: query.state ? (query.state.split(',') as JobState[]) : undefined,
    kind: query.kind,
    accountId: query.accountId,
    providerId: query.providerId,
  };
}

/** A CSV export as the reply: streamed, an attachment, never cached. */
function csvFile(reply: FastifyReply, csv: CsvExport): StreamableFile {
  void reply.header('cache-control', 'no-store');
  return new StreamableFile(csv.body, {
    type: `${CSV_MEDIA_TYPE}; charset=utf-8`,
    disposition: `attachment; filename="${csv.filename}"`,
  });
}
