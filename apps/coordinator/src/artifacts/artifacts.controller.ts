import { Body, Controller, Get, Param, Post, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { CurrentPrincipal, RequireScopes } from '../auth/auth.decorators.js';
import type { Principal } from '../auth/principal.js';
import { ArtifactsService } from './artifacts.service.js';
import { ArtifactDto, UploadArtifactDto, mapArtifact } from './dto/artifact.dto.js';

@ApiTags('artifacts')
@ApiBearerAuth()
@Controller('v1/artifacts')
export class ArtifactsController {
  constructor(private readonly artifacts: ArtifactsService) {}

  @Post()
  @RequireScopes('artifacts:write')
  @ApiOperation({
    summary: 'Upload a tfjs model (model.json + weights); it is stored under its content hash',
  })
  @ApiResponse({ status: 201, type: ArtifactDto, description: 'stored' })
  @ApiResponse({ status: 200, type: ArtifactDto, description: 'already stored' })
  async upload(
    @CurrentPrincipal() principal: Principal,
    @Body() body: UploadArtifactDto,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ArtifactDto> {
    const { artifact, created } = await this.artifacts.upload(principal, body);
    void reply.status(created ? 201 : 200);
    return mapArtifact(artifact);
  }

  @Get(':hash')
  @ApiOperation({ summary: "An artifact's metadata" })
  async get(@Param('hash') hash: string): Promise<ArtifactDto> {
    return mapArtifact(await this.artifacts.get(hash));
  }
}
