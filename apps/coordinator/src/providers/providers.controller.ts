import { Controller, Get, Query } from '@nestjs/common';
import { ApiOperation, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { IsIn, IsInt, IsOptional, Max, Min } from 'class-validator';
import { Type } from 'class-transformer';
import type { Provider } from '#prisma';
import { Public } from '../auth/auth.decorators.js';
import { ProvidersRepository } from './providers.repository.js';

export class ProviderDto {
  @ApiProperty() peerId: string;
  @ApiProperty() operatorId: string;
  @ApiProperty({ enum: ['ONLINE', 'OFFLINE', 'DRAINING', 'BANNED'] }) status: string;
  @ApiProperty({ enum: ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] }) backend: string;
  @ApiProperty({ type: 'array', items: { type: 'object' } }) gpus: unknown;
  @ApiProperty({ description: 'measured matmul GFLOP/s' }) gflops: number;
  @ApiProperty({ description: 'base units per work unit' }) pricePerUnit: string;
  @ApiProperty() slots: number;
  @ApiProperty() freeSlots: number;
  @ApiProperty({ minimum: 0, maximum: 1 }) reputation: number;
  @ApiPropertyOptional({ nullable: true, type: String }) region: string | null;
  @ApiProperty() lastSeenAt: string;
}

export class ListProvidersQueryDto {
  @ApiPropertyOptional({ enum: ['ONLINE', 'OFFLINE', 'DRAINING', 'BANNED'] })
  @IsOptional()
  @IsIn(['ONLINE', 'OFFLINE', 'DRAINING', 'BANNED'])
  status?: 'ONLINE' | 'OFFLINE' | 'DRAINING' | 'BANNED';

  @ApiPropertyOptional({ minimum: 1, maximum: 500, default: 100 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(500)
  limit?: number;
}

export function mapProvider(p: Provider): ProviderDto {
  return {
    peerId: p.peerId,
    operatorId: p.operatorId,
    status: p.status,
    backend: p.backend,
    gpus: p.gpus,
    gflops: p.gflops,
    pricePerUnit: p.pricePerUnit.toString(),
    slots: p.slots,
    freeSlots: p.freeSlots,
    reputation: p.reputation,
    region: p.region,
    lastSeenAt: p.lastSeenAt.toISOString(),
  };
}

@ApiTags('providers')
@Controller('v1/providers')
export class ProvidersController {
  constructor(private readonly providers: ProvidersRepository) {}

  @Public()
  @Get()
  @ApiOperation({ summary: 'The public view of providers (online ones by default)' })
  async list(@Query() query: ListProvidersQueryDto): Promise<ProviderDto[]> {
    const rows = await this.providers.list({
      statuses: [query.status ?? 'ONLINE'],
      limit: query.limit ?? 100,
    });
    return rows.map(mapProvider);
  }
}
