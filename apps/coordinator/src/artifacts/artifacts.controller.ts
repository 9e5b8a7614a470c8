import { Body, Controller, Get, Param, Patch, Post, Query, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../common/api-docs.js';
import type { FastifyReply } from 'fastify';
import { CurrentPrincipal, RequireScopes } from '../auth/auth.decorators.js';
import type { Principal } from '../auth/principal.js';
import { ArtifactsService } from './artifacts.service.js';
import {
  ArtifactDto,
  ArtifactPageDto,
  ListArtifactsQueryDto,
  UpdateArtifactDto,
  UploadArtifactDto,
  mapArtifact,
} from './dto/artifact.dto.js';

@ApiTags('artifacts')
@ApiBearerAuth()
@Controller('v1/artifacts')
export class ArtifactsController {
  constructor(private readonly artifacts: ArtifactsService) {}

  @Post()
  @RequireScopes('artifacts:write')
  @ApiOperation({
    summary:
      'Upload a tfjs model (model.json + weights); it is stored under its content hash, private to you unless `public`',
  })
  @ApiResponse({ status: 201, type: ArtifactDto, description: 'stored as yours' })
  @ApiResponse({ status: 200, type: ArtifactDto, description: 'you had already uploaded it' })
  @ApiErrors({
    400: 'VALIDATION_FAILED: the model.json, its manifest or the weights are malformed',
    403: 'FORBIDDEN: the key lacks artifacts:write',
    413: 'PAYLOAD_TOO_LARGE: the weights are larger than MAX_ARTIFACT_BYTES',
  })
  async upload(
    @CurrentPrincipal() principal: Principal,
    @Body() body: UploadArtifactDto,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<ArtifactDto> {
    const { artifact, created } = await this.artifacts.upload(principal, body);
    void reply.status(created ? 201 : 200);
    return mapArtifact(artifact);
  }

  @Get()
  @ApiOperation({ summary: 'Your artifacts, newest upload first, with cursor pagination' })
  @ApiOkResponse({ type: ArtifactPageDto })
  async list(
    @CurrentPrincipal() principal: Principal,
    @Query() query: ListArtifactsQueryDto,
  ): Promise<ArtifactPageDto> {
    const page = await this.artifacts.list(principal, query);
    return { items: page.items.map(mapArtifact), nextCursor: page.nextCursor };
  }

  @Get(':hash')
  @ApiOperation({ summary: "An artifact's metadata (yours or public; anything else is ARTIFACT_NOT_FOUND)" })
  @ApiOkResponse({ type: ArtifactDto })
  @ApiErrors({ 404: 'ARTIFACT_NOT_FOUND: not yours and not public, or no such artifact' })
  async get(@CurrentPrincipal() principal: Principal, @Param('hash') hash: string): Promise<ArtifactDto> {
    return mapArtifact(await this.artifacts.get(principal, hash));
  }

  @Patch(':hash')
  @RequireScopes('artifacts:write')
  @ApiOperation({ summary: 'Share your upload of an artifact with every account, or stop sharing it' })
  @ApiOkResponse({ type: ArtifactDto })
  @ApiErrors({
    403: 'FORBIDDEN: the key lacks artifacts:write, or the artifact is public but not yours',
    404: 'ARTIFACT_NOT_FOUND',
  })
  async update(
    @CurrentPrincipal() principal: Principal,
    @Param('hash') hash: string,
    @Body() body: UpdateArtifactDto,
  ): Promise<ArtifactDto> {
    return mapArtifact(await this.artifacts.setPublic(principal, hash, body.public));
  }
}
