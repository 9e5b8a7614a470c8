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

export class ChainHealthDto extends DependencyHealthDto {
  @ApiProperty() chainId: number;
  @ApiPropertyOptional({ description: 'the latest block, when the RPC answered' }) blockNumber?: number;
}

export class P2pHealthDto {
  @ApiProperty({ enum: ['up', 'idle', 'down'], description: 'idle: the node runs, no agent is connected' })
  status: string;
  @ApiProperty({ description: 'connected peers' }) peers: number;
}

export class SettlementHealthDto {
  @ApiProperty({
    enum: ['up', 'degraded'],
    description:
      'degraded: an epoch is blocked or unfunded, or a closed epoch waits over 10 min to be posted',
  })
  status: string;
  @ApiProperty({ type: 'object', additionalProperties: { type: 'integer' }, description: 'epochs per state' })
  epochs: Record<string, number>;
  @ApiProperty({ description: 'base units FUNDING epochs still lack on chain' }) unfundedBaseUnits: string;
  @ApiProperty() blockedEpochs: number;
  @ApiProperty({ description: 'seconds the oldest closed epoch has waited to be posted' })
  postingLagSeconds: number;
}

export class HealthChecksDto {
  @ApiProperty({ type: DependencyHealthDto }) database: DependencyHealthDto;
  @ApiProperty({ type: DependencyHealthDto }) redis: DependencyHealthDto;
  @ApiPropertyOptional({ type: ChainHealthDto, description: 'when this process settles on a chain' })
  chain?: ChainHealthDto;
  @ApiPropertyOptional({ type: P2pHealthDto, description: 'when this process runs the p2p node' })
  p2p?: P2pHealthDto;
  @ApiPropertyOptional({ type: SettlementHealthDto, description: 'when this process settles on a chain' })
  settlement?: SettlementHealthDto;
}

@ApiSchema({ name: 'HealthReport' })
export class HealthReportDto {
  @ApiProperty({
    enum: ['ok', 'degraded', 'unavailable'],
    description:
      'ok; degraded (still serving: the chain, p2p or settlement needs a look; HTTP 200); unavailable (PostgreSQL or Redis down; HTTP 503)',
  })
  status: string;
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
  @ApiOperation({
    summary:
      'Readiness (PostgreSQL and Redis: 503 when either is down) and the state of the chain, the p2p node and settlement',
  })
  @ApiOkResponse({
    type: HealthReportDto,
    description: 'PostgreSQL and Redis answer (status ok or degraded)',
  })
  @ApiResponse({ status: 503, type: HealthReportDto, description: 'not ready: a check is down (see checks)' })
  async check(@Res({ passthrough: true }) reply: FastifyReply): Promise<HealthReport> {
    const report = await this.health.check();
    void reply.status(report.status === 'unavailable' ? 503 : 200);
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
