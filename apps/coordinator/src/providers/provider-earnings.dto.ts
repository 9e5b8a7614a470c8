import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, Max, Min } from 'class-validator';
import { EARNINGS_DEFAULT_JOBS, EARNINGS_MAX_JOBS } from './provider-earnings.service.js';

export class ProviderEarningsQueryDto {
  @ApiPropertyOptional({ minimum: 1, maximum: EARNINGS_MAX_JOBS, default: EARNINGS_DEFAULT_JOBS })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(EARNINGS_MAX_JOBS)
  limit?: number;
}

export class JobEarningDto {
  @ApiProperty() jobId: string;
  @ApiProperty({ type: [Number], description: "the provider's attempt numbers at the job" })
  attempts: number[];
  @ApiPropertyOptional({ nullable: true, type: String }) finishedAt: string | null;
  @ApiProperty({ description: 'paid for this work before the platform fee, base units' }) gross: string;
  @ApiProperty({ description: 'platform fee, base units' }) fee: string;
  @ApiProperty({ description: 'what the provider gets (gross − fee − reversed), base units' }) net: string;
  @ApiProperty({ description: 'taken back after a failed check, base units' }) reversed: string;
  @ApiProperty({ enum: ['held', 'earned', 'in-epoch', 'reversed'] }) state: string;
  @ApiPropertyOptional({ nullable: true, type: Number, description: 'the epoch that pays it' })
  epoch: number | null;
  @ApiPropertyOptional({ nullable: true, type: String }) epochState: string | null;
  @ApiProperty() creditedAt: string;
}

export class EarningsTotalsDto {
  @ApiProperty({ description: 'Σ net credited minus reversals, all time, base units' }) net: string;
  @ApiProperty({ description: 'held until verification vests it' }) held: string;
  @ApiProperty({ description: 'vested, waiting for the next epoch' }) pendingEpoch: string;
  @ApiProperty({ description: 'in closed epochs (claimable once final)' }) inEpochs: string;
  @ApiProperty() reversed: string;
}

export class ProviderEarningsDto {
  @ApiProperty() peerId: string;
  @ApiPropertyOptional({ nullable: true, type: String }) address: string | null;
  @ApiProperty({ description: 'current platform fee, basis points' }) feeBps: number;
  @ApiProperty({ type: EarningsTotalsDto }) totals: EarningsTotalsDto;
  @ApiPropertyOptional({ nullable: true, type: Number }) openEpoch: number | null;
  @ApiProperty({ type: [JobEarningDto] }) jobs: JobEarningDto[];
}
