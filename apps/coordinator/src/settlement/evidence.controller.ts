import { Controller, Get, Param, Req } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiSecurity, ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../common/api-docs.js';
import { OptionalAuth, Public, type RequestWithPrincipal } from '../auth/auth.decorators.js';
import { EvidenceDto } from './evidence.dto.js';
import { EvidenceService } from './evidence.service.js';

/**
 * Public: the evidence behind every slash, so anyone can check a conviction's integrity. Strangers get
 * the redacted bundle (no job inputs, outputs or private model weights); the job's owner, the accused
 * provider's operator and admins, authenticated, get the full one.
 */
@ApiTags('evidence')
@Controller('v1/evidence')
export class EvidenceController {
  constructor(private readonly evidence: EvidenceService) {}

  @Get(':hash')
  @Public()
  @OptionalAuth()
  @ApiOperation({
    summary: 'An evidence bundle by its hash, with the state of the slash citing it',
    description:
      "No authentication needed (rate-limited like every public route). `hash` is the `evidenceHash` of ProviderStaking's `SlashProposed` and `Slashed` events; keccak256 of the canonical JSON of the returned `bundle` without its `disclosed` part equals it, in both forms. Without credentials (or for any other account) the bundle is redacted (`access: redacted`): it commits to the job's inputs and outputs by digest and to its model by hash, and discloses only public model weights. With the API key of the job's owner, of the account of the accused provider's operator address, or of an admin it is the full bundle (`access: full`) that `gpumesh verify-evidence` recomputes. 400 on a malformed hash, 401 on bad credentials, 404 when no bundle has it.",
  })
  @ApiSecurity({})
  @ApiSecurity('bearer')
  @ApiOkResponse({ type: EvidenceDto })
  @ApiErrors({
    401: 'INVALID_API_KEY: credentials were sent and are unknown, revoked or expired',
    403: 'FORBIDDEN: an old (version 1) bundle cannot be shown redacted',
    404: 'NOT_FOUND: no evidence bundle has this hash',
  })
  byHash(@Param('hash') hash: string, @Req() request: RequestWithPrincipal): Promise<EvidenceDto> {
    return this.evidence.byHash(hash, request.principal);
  }
}
