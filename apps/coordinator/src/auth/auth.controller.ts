import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { uuidParam } from '../common/pipes.js';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { ApiErrors } from '../common/api-docs.js';
import { AuthService } from './auth.service.js';
import { CurrentPrincipal, Public } from './auth.decorators.js';
import type { Principal } from './principal.js';
import {
  ApiKeyDto,
  CreateApiKeyDto,
  CreatedApiKeyDto,
  NonceResponseDto,
  SessionResponseDto,
  SignInDto,
  mapApiKey,
} from './dto/auth.dto.js';

@ApiTags('auth')
@Controller('v1/auth')
export class AuthController {
  constructor(private readonly auth: AuthService) {}

  @Public()
  @Get('nonce')
  @ApiOperation({ summary: 'A one-time nonce for a Sign-In with Ethereum message' })
  @ApiOkResponse({ type: NonceResponseDto })
  async nonce(): Promise<NonceResponseDto> {
    const n = await this.auth.issueNonce();
    return { ...n, expiresAt: n.expiresAt.toISOString() };
  }

  @Public()
  @Post('siwe')
  @HttpCode(200)
  @ApiOperation({ summary: 'Exchange a signed SIWE message for a session token' })
  @ApiOkResponse({ type: SessionResponseDto })
  @ApiErrors({ 401: 'INVALID_SIGNATURE or INVALID_NONCE: bad signature, domain, chain or nonce' })
  async signIn(@Body() body: SignInDto): Promise<SessionResponseDto> {
    const s = await this.auth.signIn(body.message, body.signature);
    return { ...s, expiresAt: s.expiresAt.toISOString() };
  }

  @Post('api-keys')
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Create an API key for your account (the secret is shown once)' })
  @ApiCreatedResponse({ type: CreatedApiKeyDto })
  @ApiErrors({
    403: 'FORBIDDEN: an admin key from a developer account, or scopes beyond the credential (details.missing)',
  })
  async createKey(
    @CurrentPrincipal() principal: Principal,
    @Body() body: CreateApiKeyDto,
  ): Promise<CreatedApiKeyDto> {
    const { key, secret } = await this.auth.createApiKey(principal, body);
    return { ...mapApiKey(key), secret };
  }

  @Get('api-keys')
  @ApiBearerAuth()
  @ApiOperation({ summary: "List your account's API keys (never their secrets)" })
  @ApiOkResponse({ type: [ApiKeyDto] })
  async listKeys(@CurrentPrincipal() principal: Principal): Promise<ApiKeyDto[]> {
    return (await this.auth.listApiKeys(principal)).map(mapApiKey);
  }

  @Delete('api-keys/:id')
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Revoke an API key' })
  @ApiOkResponse({ type: ApiKeyDto, description: 'the revoked key' })
  @ApiErrors({ 404: 'API_KEY_NOT_FOUND: no such key of your account' })
  async revoke(
    @CurrentPrincipal() principal: Principal,
    @Param('id', uuidParam('id')) id: string,
  ): Promise<ApiKeyDto> {
    return mapApiKey(await this.auth.revokeApiKey(principal, id));
  }
}
