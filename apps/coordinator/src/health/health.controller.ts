import { Controller, Get, Res } from '@nestjs/common';
import {
  ApiOkResponse,
  ApiOperation,
  ApiProperty,
  ApiPropertyOptional,
  ApiResponse,
  ApiSchema,
  ApiTags,
} from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { Public } from '../auth/auth.decorators.js';
import { HealthService, type HealthReport } from './health.service.js';

export class DependencyHealthDto {
  @ApiProperty({ enum: ['up', 'down'] }) status: string;
  @ApiProperty() latencyMs: number;
  @ApiPropertyOptional({ description: 'why it is down' }) error?: string;
}

export class HealthChecksDto {
  @ApiProperty({ type: DependencyHealthDto }) database: DependencyHealthDto;
  @ApiProperty({ type: DependencyHealthDto }) redis: DependencyHealthDto;
}

@ApiSchema({ name: 'HealthReport' })
export class HealthReportDto {
  @ApiProperty({ enum: ['ok', 'unavailable'] }) status: string;
  @ApiProperty({ type: HealthChecksDto }) checks: HealthChecksDto;
}

export class LivenessDto {
  @ApiProperty({ enum: ['ok'] }) status: string;
}

@ApiTags('health')
@Controller('health')
export class HealthController {
  constructor(private readonly health: HealthService) {}

  @Public()
  @Get()
  @ApiOperation({ summary: 'Liveness and readiness of PostgreSQL and Redis (503 when not ready)' })
  @ApiOkResponse({ type: HealthReportDto, description: 'PostgreSQL and Redis answer' })
  @ApiResponse({ status: 503, type: HealthReportDto, description: 'not ready: a check is down (see checks)' })
  async check(@Res({ passthrough: true }) reply: FastifyReply): Promise<HealthReport> {
    const report = await this.health.check();
    void reply.status(report.status === 'ok' ? 200 : 503);
    return report;
  }

  @Public()
  @Get('live')
  @ApiOperation({ summary: 'Liveness only' })
  @ApiOkResponse({ type: LivenessDto })
  live(): { status: 'ok' } {
    return { status: 'ok' };
  }
}
