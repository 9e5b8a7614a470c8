import { Body, Controller, Delete, Get, HttpCode, Put, Query } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiProperty,
  ApiPropertyOptional,
  ApiTags,
} from '@nestjs/swagger';
import { ApiErrors } from '../../common/api-docs.js';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import type { Webhook, WebhookDelivery } from '#prisma';
import { CurrentPrincipal, RequireScopes } from '../../auth/auth.decorators.js';
import type { Principal } from '../../auth/principal.js';
import { MAX_DELIVERY_LOG, WebhooksService } from './webhooks.service.js';
import { MAX_WEBHOOK_URL_LENGTH } from './webhook-url.js';

export class WebhookDto {
  @ApiProperty({ example: 'https://example.com/gpumesh' }) url: string;
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
  @ApiProperty({ example: 'job.corrected' }) event: string;
  @ApiPropertyOptional({ nullable: true, type: String, format: 'uuid' }) jobId: string | null;
  @ApiProperty() url: string;
  @ApiProperty({ enum: ['PENDING', 'DELIVERED', 'FAILED'] }) state: string;
  @ApiProperty() attempts: number;
  @ApiPropertyOptional({ nullable: true, type: Number }) lastStatus: number | null;
  @ApiPropertyOptional({ nullable: true, type: String }) lastError: string | null;
  @ApiProperty({ description: 'next attempt (PENDING) or last one' }) nextAttemptAt: string;
  @ApiProperty() createdAt: string;
  @ApiPropertyOptional({ nullable: true, type: String }) deliveredAt: string | null;
}

export class SetWebhookDto {
  @ApiProperty({ description: 'https URL on a public address', example: 'https://example.com/gpumesh' })
  @IsString()
  @MaxLength(MAX_WEBHOOK_URL_LENGTH)
  url: string;
}

export class DeliveriesQueryDto {
  @ApiPropertyOptional({ minimum: 1, maximum: MAX_DELIVERY_LOG, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(MAX_DELIVERY_LOG)
  limit?: number;
}

function mapWebhook(w: Webhook): WebhookDto {
  return { url: w.url, createdAt: w.createdAt.toISOString(), updatedAt: w.updatedAt.toISOString() };
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

@ApiTags('account')
@ApiBearerAuth()
@Controller('v1/account/webhook')
export class WebhooksController {
  constructor(private readonly webhooks: WebhooksService) {}

  @Put()
  @RequireScopes('jobs:write')
  @ApiOperation({
    summary:
      'Set your webhook: signed POSTs of job.corrected events (a delivered result found wrong later); returns a new signing secret',
  })
  @ApiOkResponse({ type: WebhookCreatedDto })
  @ApiErrors({ 403: 'FORBIDDEN: the key lacks jobs:write' })
  async set(
    @CurrentPrincipal() principal: Principal,
    @Body() body: SetWebhookDto,
  ): Promise<WebhookCreatedDto> {
    const webhook = await this.webhooks.register(principal.accountId, body.url);
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

  @Get('deliveries')
  @RequireScopes('account:read')
  @ApiOperation({ summary: 'The delivery log: your latest deliveries, their attempts and answers' })
  @ApiOkResponse({ type: [WebhookDeliveryDto] })
  @ApiErrors({ 403: 'FORBIDDEN: the key lacks account:read' })
  async deliveries(
    @CurrentPrincipal() principal: Principal,
    @Query() query: DeliveriesQueryDto,
  ): Promise<WebhookDeliveryDto[]> {
    return (await this.webhooks.deliveries(principal.accountId, query.limit)).map(mapDelivery);
  }
}
