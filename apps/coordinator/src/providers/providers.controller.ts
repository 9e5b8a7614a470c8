import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../common/api-docs.js';
import { Public } from '../auth/auth.decorators.js';
import { ProvidersRepository } from './providers.repository.js';
import { ProviderViewService } from '../p2p/provider-view.service.js';
import { ProviderEarningsService } from './provider-earnings.service.js';
import { ProviderEarningsDto, ProviderEarningsQueryDto } from './provider-earnings.dto.js';
import { ListProvidersQueryDto, ProviderDto, mapProvider } from './dto/provider.dto.js';

@ApiTags('providers')
@Controller('v1/providers')
export class ProvidersController {
  constructor(
    private readonly providers: ProvidersRepository,
    private readonly view: ProviderViewService,
    private readonly earnings: ProviderEarningsService,
  ) {}

  @Public()
  @Get(':peerId/earnings')
  @ApiOperation({
    summary:
      "A provider's earnings per job: gross, fee, net, held or vested, and the epoch that pays it (public, like the epoch files)",
  })
  @ApiOkResponse({ type: ProviderEarningsDto })
  @ApiErrors({ 404: 'NOT_FOUND: no provider with this peer id is known' })
  earningsOf(
    @Param('peerId') peerId: string,
    @Query() q: ProviderEarningsQueryDto,
  ): Promise<ProviderEarningsDto> {
    return this.earnings.forProvider(peerId, q.limit);
  }

  @Public()
  @Get()
  @ApiOperation({ summary: 'The public view of providers (online ones by default)' })
  @ApiOkResponse({ type: [ProviderDto] })
  async list(@Query() query: ListProvidersQueryDto): Promise<ProviderDto[]> {
    const status = query.status ?? 'ONLINE';
    // An ONLINE provider is listed only while its advert is fresh (live); the sweeper marks lapsed
    // ones OFFLINE within seconds, this keeps them off the list meanwhile.
    const rows = await this.providers.list({
      statuses: [status],
      limit: query.limit ?? 100,
      ...(status === 'ONLINE' ? { liveAt: new Date() } : {}),
    });
    return rows.map((p) => mapProvider(p, this.view.liveFigures(p.peerId, p.address)));
  }
}
