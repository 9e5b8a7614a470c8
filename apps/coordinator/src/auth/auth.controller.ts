import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { uuidParam } from '../common/pipes.js';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
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
  async nonce(): Promise<NonceResponseDto> {
    const n = await this.auth.issueNonce();
    return { ...n, expiresAt: n.expiresAt.toISOString() };
  }

  @Public()
  @Post('siwe')
  @HttpCode(200)
  @ApiOperation({ summary: 'Exchange a signed SIWE message for a session token' })
  @ApiResponse({ status: 401, description: 'bad signature, domain, chain or nonce' })
  async signIn(@Body() body: SignInDto): Promise<SessionResponseDto> {
    const s = await this.auth.signIn(body.message, body.signature);
    return { ...s, expiresAt: s.expiresAt.toISOString() };
  }

  @Post('api-keys')
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Create an API key for your account (the secret is shown once)' })
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
  async listKeys(@CurrentPrincipal() principal: Principal): Promise<ApiKeyDto[]> {
    return (await this.auth.listApiKeys(principal)).map(mapApiKey);
  }

  @Delete('api-keys/:id')
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Revoke an API key' })
  async revoke(
    @CurrentPrincipal() principal: Principal,
    @Param('id', uuidParam('id')) id: string,
  ): Promise<ApiKeyDto> {
    return mapApiKey(await this.auth.revokeApiKey(principal, id));
  }
}
