import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Query } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiProperty,
  ApiPropertyOptional,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import { ApiErrors } from '../../common/api-docs.js';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsIn,
  IsInt,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
} from 'class-validator';
import type { Webhook, WebhookDelivery } from '#prisma';
import { CurrentPrincipal, RequireScopes } from '../../auth/auth.decorators.js';
import type { Principal } from '../../auth/principal.js';
import { uuidParam } from '../../common/pipes.js';
import { MAX_DELIVERY_LOG, WebhooksService, type AttemptOutcome } from './webhooks.service.js';
import { MAX_WEBHOOK_URL_LENGTH } from './webhook-url.js';
import { WEBHOOK_EVENT_TYPES, WEBHOOK_PING_EVENT } from './webhook-events.js';
import { WEBHOOK_DELIVERY_STATES, type WebhookDeliveryState } from './webhooks.repository.js';

export class WebhookDto {
  @ApiProperty({ example: 'https://example.com/gpumesh' }) url: string;
  @ApiProperty({
    enum: WEBHOOK_EVENT_TYPES,
    isArray: true,
    description: 'the event types delivered; empty: every event type',
  })
  events: string[];
  @ApiProperty() createdAt: string;
  @ApiProperty() updatedAt: string;
}

export class WebhookCreatedDto extends WebhookDto {
  @ApiProperty({
    description:
      'the HMAC-SHA256 key of the x-gpumesh-signature header (sha256=hex of HMAC(secret, "<x-gpumesh-timestamp>.<body>")); shown only here: PUT again to rotate it',
  })
  secret: string;
}

export class WebhookDeliveryDto {
  @ApiProperty({ format: 'uuid', description: 'also the x-gpumesh-delivery header: deduplicate on it' })
  id: string;
  @ApiProperty({ enum: [...WEBHOOK_EVENT_TYPES, WEBHOOK_PING_EVENT], example: 'job.succeeded' })
  event: string;
  @ApiPropertyOptional({ nullable: true, type: String, format: 'uuid' }) jobId: string | null;
  @ApiProperty() url: string;
  @ApiProperty({ enum: WEBHOOK_DELIVERY_STATES }) state: string;
  @ApiProperty({ description: 'attempts made so far' }) attempts: number;
  @ApiPropertyOptional({ nullable: true, type: Number, description: 'HTTP status of the last attempt' })
  lastStatus: number | null;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'why the last attempt failed' })
  lastError: string | null;
  @ApiProperty({ description: 'next attempt (PENDING) or last one' }) nextAttemptAt: string;
  @ApiProperty() createdAt: string;
  @ApiPropertyOptional({ nullable: true, type: String }) deliveredAt: string | null;
}

export class WebhookDeliveryPageDto {
  @ApiProperty({ type: [WebhookDeliveryDto], description: 'newest first' }) items: WebhookDeliveryDto[];
  @ApiPropertyOptional({ nullable: true, type: String, description: 'pass as ?cursor= for the next page' })
  nextCursor: string | null;
}

export class WebhookTestResultDto {
  @ApiProperty({ description: 'the receiver answered 2xx' }) delivered: boolean;
  @ApiPropertyOptional({ nullable: true, type: Number, description: "the receiver's HTTP status" })
  status: number | null;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description: 'why it failed (refused URL, timeout, connection error, non-2xx answer)',
  })
  error: string | null;
  @ApiProperty({ description: 'time of the attempt, connection included' }) durationMs: number;
  @ApiProperty({ type: WebhookDeliveryDto, description: 'the ping in the delivery log (not retried)' })
  delivery: WebhookDeliveryDto;
}

export class SetWebhookDto {
  @ApiProperty({ description: 'https URL on a public address', example: 'https://example.com/gpumesh' })
  @IsString()
  @MaxLength(MAX_WEBHOOK_URL_LENGTH)
  url: string;

  @ApiPropertyOptional({
    enum: WEBHOOK_EVENT_TYPES,
    isArray: true,
    description: 'deliver only these event types (default: every event type)',
    example: ['job.succeeded', 'job.failed'],
  })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(WEBHOOK_EVENT_TYPES.length)
  @IsIn(WEBHOOK_EVENT_TYPES, {
    each: true,
    message: `events: each must be one of ${WEBHOOK_EVENT_TYPES.join(', ')}`,
  })
  events?: string[];
}

export class DeliveriesQueryDto {
  @ApiPropertyOptional({ minimum: 1, maximum: MAX_DELIVERY_LOG, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_DELIVERY_LOG)
  limit?: number;

  @ApiPropertyOptional({ description: 'opaque cursor from a previous page (nextCursor)' })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9_-]{1,200}$/, { message: 'cursor: is not a cursor this API returned' })
  cursor?: string;

  @ApiPropertyOptional({ enum: WEBHOOK_DELIVERY_STATES, description: 'only deliveries in this state' })
  @IsOptional()
  @IsIn(WEBHOOK_DELIVERY_STATES)
  state?: WebhookDeliveryState;

  @ApiPropertyOptional({
    enum: [...WEBHOOK_EVENT_TYPES, WEBHOOK_PING_EVENT],
    description: 'only this event type',
  })
  @IsOptional()
  @IsIn([...WEBHOOK_EVENT_TYPES, WEBHOOK_PING_EVENT])
  event?: string;
}

function mapWebhook(w: Webhook): WebhookDto {
  return {
    url: w.url,
    events: w.events,
    createdAt: w.createdAt.toISOString(),
    updatedAt: w.updatedAt.toISOString(),
  };
}

function mapDelivery(d: WebhookDelivery): WebhookDeliveryDto {
  return {
    id: d.id,
    event: d.event,
    jobId: d.jobId,
    url: d.url,
    state: d.state,
    attempts: d.attempts,
    lastStatus: d.lastStatus,
    lastError: d.lastError,
    nextAttemptAt: d.nextAttemptAt.toISOString(),
    createdAt: d.createdAt.toISOString(),
    deliveredAt: d.deliveredAt?.toISOString() ?? null,
  };
}

function mapTestResult(delivery: WebhookDelivery, outcome: AttemptOutcome): WebhookTestResultDto {
  return {
    delivered: outcome.delivered,
    status: outcome.status,
    error: outcome.error,
    durationMs: outcome.durationMs,
    delivery: mapDelivery(delivery),
  };
}

@ApiTags('account')
@ApiBearerAuth()
@Controller('v1/account/webhook')
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  @Put()
  @RequireScopes('jobs:write')
  @ApiOperation({
    summary:
      'Set your webhook: signed POSTs of job lifecycle events (job.running, job.succeeded, job.failed, job.expired, job.cancelled) and job.corrected, all or the `events` chosen; returns a new signing secret',
  })
  @ApiOkResponse({ type: WebhookCreatedDto })
  @ApiErrors({
    400: 'VALIDATION_FAILED: the URL is not https on a public address, or an unknown event type',
    403: 'FORBIDDEN: the key lacks jobs:write',
  })
  async set(
    @CurrentPrincipal() principal: Principal,
    @Body() body: SetWebhookDto,
  ): Promise<WebhookCreatedDto> {
    const webhook = await this.webhooks.register(principal.accountId, body.url, body.events);
    return { ...mapWebhook(webhook), secret: webhook.secret };
  }

  @Get()
  @RequireScopes('account:read')
  @ApiOperation({ summary: 'Your webhook (its secret is shown only when set)' })
  @ApiOkResponse({ type: WebhookDto })
  @ApiErrors({ 403: 'FORBIDDEN: the key lacks account:read', 404: 'WEBHOOK_NOT_FOUND' })
  async get(@CurrentPrincipal() principal: Principal): Promise<WebhookDto> {
    return mapWebhook(await this.webhooks.get(principal.accountId));
  }

  @Delete()
  @HttpCode(204)
  @RequireScopes('jobs:write')
  @ApiOperation({ summary: 'Remove your webhook (queued deliveries are given up)' })
  @ApiNoContentResponse({ description: 'removed' })
  @ApiErrors({ 403: 'FORBIDDEN: the key lacks jobs:write', 404: 'WEBHOOK_NOT_FOUND' })
  async remove(@CurrentPrincipal() principal: Principal): Promise<void> {
    await this.webhooks.remove(principal.accountId);
  }

  @Post('test')
  @HttpCode(200)
  @RequireScopes('jobs:write')
  @ApiOperation({
    summary:
      'Send a signed `ping` event to your webhook now and report the outcome (one attempt, not retried; it is in the delivery log)',
  })
  @ApiOkResponse({
    type: WebhookTestResultDto,
    description: 'the attempt was made: `delivered` says whether the receiver answered 2xx',
  })
  @ApiErrors({ 403: 'FORBIDDEN: the key lacks jobs:write', 404: 'WEBHOOK_NOT_FOUND' })
  async test(@CurrentPrincipal() principal: Principal): Promise<WebhookTestResultDto> {
    const { delivery, outcome } = await this.webhooks.ping(principal.accountId);
    return mapTestResult(delivery, outcome);
  }

  @Get('deliveries')
  @RequireScopes('account:read')
  @ApiOperation({
    summary:
      'The delivery log: your deliveries, newest first, their attempts and answers (cursor pagination)',
  })
  @ApiOkResponse({ type: WebhookDeliveryPageDto })
  @ApiErrors({
    400: 'VALIDATION_FAILED: a bad limit, cursor, state or event',
    403: 'FORBIDDEN: the key lacks account:read',
  })
  async deliveries(
    @CurrentPrincipal() principal: Principal,
    @Query() query: DeliveriesQueryDto,
  ): Promise<WebhookDeliveryPageDto> {
    const page = await this.webhooks.deliveryPage(principal.accountId, query);
    return { items: page.items.map(mapDelivery), nextCursor: page.nextCursor };
  }

  @Get('deliveries/:id')
  @RequireScopes('account:read')
  @ApiOperation({ summary: 'One delivery of the log' })
  @ApiOkResponse({ type: WebhookDeliveryDto })
  @ApiErrors({
    403: 'FORBIDDEN: the key lacks account:read',
    404: 'NOT_FOUND: no such delivery of this account',
  })
  async delivery(
    @CurrentPrincipal() principal: Principal,
    @Param('id', uuidParam('id')) id: string,
  ): Promise<WebhookDeliveryDto> {
    return mapDelivery(await this.webhooks.delivery(principal.accountId, id));
  }

  @Post('deliveries/:id/redeliver')
  @HttpCode(202)
  @RequireScopes('jobs:write')
  @ApiOperation({
    summary:
      'Send a failed (or delivered) delivery again, to your webhook URL of now, with a fresh retry schedule; same delivery id',
  })
  @ApiResponse({ status: 202, type: WebhookDeliveryDto, description: 'queued: PENDING, attempted at once' })
  @ApiErrors({
    403: 'FORBIDDEN: the key lacks jobs:write',
    404: 'NOT_FOUND: no such delivery of this account; WEBHOOK_NOT_FOUND: no webhook to deliver to',
    409: 'ILLEGAL_TRANSITION: the delivery is still PENDING',
  })
  async redeliver(
    @CurrentPrincipal() principal: Principal,
    @Param('id', uuidParam('id')) id: string,
  ): Promise<WebhookDeliveryDto> {
    return mapDelivery(await this.webhooks.redeliver(principal.accountId, id));
  }
}
