import { Controller, Get, Param } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { Public } from '../auth/auth.decorators.js';
import { EvidenceDto } from './evidence.dto.js';
import { EvidenceService } from './evidence.service.js';

/** Public: the evidence behind every slash, so anyone can re-check a conviction. */
@ApiTags('evidence')
@Controller('v1/evidence')
export class EvidenceController {
  constructor(private readonly evidence: EvidenceService) {}

  @Get(':hash')
  @Public()
  @ApiOperation({
    summary: 'An evidence bundle by its hash, exactly as hashed, with the state of the slash citing it',
    description:
      "No authentication (rate-limited like every public route). `hash` is the `evidenceHash` of ProviderStaking's `SlashProposed` and `Slashed` events; keccak256 of the UTF-8 bytes of the returned `bundle` equals it. 400 on a malformed hash, 404 when no bundle has it.",
  })
  byHash(@Param('hash') hash: string): Promise<EvidenceDto> {
    return this.evidence.byHash(hash);
  }
}
