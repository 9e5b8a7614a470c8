import { BACKENDS } from '@gpumesh/protocol';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsInt, IsOptional, Max, Min } from 'class-validator';
import { Type } from 'class-transformer';
import type { Provider } from '#prisma';

export class GpuDto {
  @ApiProperty({ example: 'NVIDIA RTX 4090' }) model: string;
  @ApiProperty({ example: 24564 }) vramMiB: number;
  @ApiPropertyOptional({ example: '8.9' }) computeCapability?: string;
}

export class ProviderDto {
  @ApiProperty() peerId: string;
  @ApiProperty() operatorId: string;
  @ApiProperty({ enum: ['ONLINE', 'OFFLINE', 'DRAINING', 'BANNED'] }) status: string;
  @ApiProperty({ enum: BACKENDS }) backend: string;
  @ApiProperty({ type: [GpuDto] }) gpus: unknown;
  @ApiProperty({
    description: 'advertised matmul GFLOP/s (a claim: placement credits at most measuredGflops)',
  })
  gflops: number;
  @ApiPropertyOptional({
    nullable: true,
    type: Number,
    description:
      'GFLOP/s the latest timed known-answer job vouches for (a lower bound; at least the probation figure when it answered too fast to resolve); null until measured',
  })
  measuredGflops: number | null;
  @ApiPropertyOptional({ nullable: true, type: String }) measuredAt: string | null;
  @ApiProperty({ description: 'its advert is far above its measured speed (CAPACITY_OVERSTATED_FACTOR)' })
  capacityOverstated: boolean;
  @ApiProperty({ description: 'base units per work unit' }) pricePerUnit: string;
  @ApiProperty() slots: number;
  @ApiProperty() freeSlots: number;
  @ApiProperty({ minimum: 0, maximum: 1 }) reputation: number;
  @ApiPropertyOptional({ nullable: true, type: String }) region: string | null;
  @ApiPropertyOptional({
    nullable: true,
    type: String,
    description:
      'usable stake (bonded minus frozen, base units) of its operator address as placement sees it; null when stake does not gate placement',
  })
  usableStake: string | null;
  @ApiProperty({ description: 'base units of work offered to or running on it (workUnits × price)' })
  inFlightValue: string;
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

/** The placing worker's live figures of a provider, when this process is that worker. */
export interface LiveProviderFigures {
  stake: bigint | null;
  inFlightValue: bigint | undefined;
}

/** The API view of a stored provider; `live` (this process's placement view) beats the stored figures. */
export function mapProvider(p: Provider, live?: LiveProviderFigures): ProviderDto {
  const stake = live?.stake !== undefined && live.stake !== null ? live.stake : p.stake;
  return {
    peerId: p.peerId,
    operatorId: p.operatorId,
    status: p.status,
    backend: p.backend,
    gpus: p.gpus,
    gflops: p.gflops,
    measuredGflops: p.measuredGflops,
    measuredAt: p.measuredAt?.toISOString() ?? null,
    capacityOverstated: p.capacityOverstatedAt !== null,
    pricePerUnit: p.pricePerUnit.toString(),
    slots: p.slots,
    freeSlots: p.freeSlots,
    reputation: p.reputation,
    region: p.region,
    usableStake: stake === null ? null : stake.toString(),
    inFlightValue: (live?.inFlightValue ?? p.inFlightValue).toString(),
    lastSeenAt: p.lastSeenAt.toISOString(),
  };
}
