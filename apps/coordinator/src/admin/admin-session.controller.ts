import { Body, Controller, Delete, Get, HttpCode, Post, Req, Res } from '@nestjs/common';
import {
  ApiCookieAuth,
  ApiHeader,
  ApiOkResponse,
  ApiOperation,
  ApiProperty,
  ApiSecurity,
  ApiTags,
} from '@nestjs/swagger';
import { ApiErrors } from '../common/api-docs.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CurrentPrincipal, Public } from '../auth/auth.decorators.js';
import { AdminAuthService, type AdminPrincipal, type CookieJar } from './admin-auth.service.js';
import { AdminRoute } from './admin.guard.js';
import { ADMIN_COOKIE, CSRF_HEADER } from './admin-session.js';
import { AdminSessionDto, AdminSignInDto } from './dto/admin.dto.js';

function jar(request: FastifyRequest, reply: FastifyReply): CookieJar {
  return {
    secure: request.protocol === 'https',
    headers: request.headers,
    set: (value) => void reply.header('set-cookie', value),
  };
}

export class SignedOutDto {
  @ApiProperty({ enum: [true] }) signedOut: true;
}

@ApiTags('admin')
@Controller('v1/admin/session')
export class AdminSessionController {
  constructor(private readonly sessions: AdminAuthService) {}

  @Public()
  @Post()
  @HttpCode(200)
  @ApiHeader({ name: CSRF_HEADER, required: true })
  @ApiOperation({ summary: 'Dashboard sign-in: an admin API key → an httpOnly session cookie' })
  @ApiOkResponse({ type: AdminSessionDto, description: 'signed in: the session cookie is set' })
  @ApiErrors({
    401: 'INVALID_API_KEY: unknown or revoked key',
    403: 'FORBIDDEN: not an admin key with the admin scope, or a cross-origin request',
  })
  signIn(
    @Body() body: AdminSignInDto,
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<AdminSessionDto> {
    return this.sessions.signIn(body.apiKey, jar(req, reply));
  }

  @AdminRoute()
  @Get()
  @ApiOperation({ summary: 'Who is signed in, and what they may do' })
  @ApiOkResponse({ type: AdminSessionDto })
  @ApiErrors({ 403: 'FORBIDDEN: not an admin account' })
  me(@CurrentPrincipal() principal: AdminPrincipal): AdminSessionDto {
    return this.sessions.describe(principal);
  }

  @Public()
  @Delete()
  @ApiSecurity({})
  @ApiCookieAuth(ADMIN_COOKIE)
  @ApiHeader({ name: CSRF_HEADER, required: true })
  @ApiOperation({ summary: 'Sign out: the session is revoked and the cookie cleared' })
  @ApiOkResponse({ type: SignedOutDto })
  @ApiErrors({ 403: 'FORBIDDEN: the x-gpumesh-csrf header is missing, or a cross-origin request' })
  signOut(
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<{ signedOut: true }> {
    return this.sessions.signOut(jar(req, reply));
  }
}
