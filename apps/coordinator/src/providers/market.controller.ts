import { Controller, Get } from '@nestjs/common';
import {
  ApiExtraModels,
  ApiOkResponse,
  ApiOperation,
  ApiProperty,
  ApiPropertyOptional,
  ApiTags,
} from '@nestjs/swagger';
import { Public } from '../auth/auth.decorators.js';
import { MarketService } from './market.service.js';

export class PriceRangeDto {
  @ApiProperty() providers: number;
  @ApiPropertyOptional({ nullable: true, type: String, description: 'base units per work unit' })
  min: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) median: string | null;
  @ApiPropertyOptional({ nullable: true, type: String }) max: string | null;
}

export class MarketDto extends PriceRangeDto {
  @ApiProperty({ description: 'platform fee on each provider payment, basis points' }) feeBps: number;
  @ApiProperty({ type: 'object', additionalProperties: { $ref: '#/components/schemas/PriceRangeDto' } })
  byBackend: Record<string, PriceRangeDto>;
  @ApiProperty() at: string;
}

@ApiTags('providers')
@ApiExtraModels(PriceRangeDto)
@Controller('v1/market')
export class MarketController {
  constructor(private readonly market: MarketService) {}

  @Public()
  @Get()
  @ApiOperation({
    summary: 'What live providers charge: min, median and max price per work unit, and the fee',
  })
  @ApiOkResponse({ type: MarketDto })
  get(): Promise<MarketDto> {
    return this.market.summary();
  }
}
