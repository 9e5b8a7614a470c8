import { Body, Controller, Delete, Get, HttpCode, Post, Req, Res } from '@nestjs/common';
import { ApiCookieAuth, ApiHeader, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
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

@ApiTags('admin')
@Controller('v1/admin/session')
export class AdminSessionController {
  constructor(private readonly sessions: AdminAuthService) {}

  @Public()
  @Post()
  @HttpCode(200)
  @ApiHeader({ name: CSRF_HEADER, required: true })
  @ApiOperation({ summary: 'Dashboard sign-in: an admin API key → an httpOnly session cookie' })
  @ApiResponse({ status: 401, description: 'unknown or revoked key' })
  @ApiResponse({ status: 403, description: 'not an admin key' })
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
  me(@CurrentPrincipal() principal: AdminPrincipal): AdminSessionDto {
    return this.sessions.describe(principal);
  }

  @Public()
  @Delete()
  @ApiCookieAuth(ADMIN_COOKIE)
  @ApiHeader({ name: CSRF_HEADER, required: true })
  @ApiOperation({ summary: 'Sign out: the session is revoked and the cookie cleared' })
  signOut(
    @Req() req: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<{ signedOut: true }> {
    return this.sessions.signOut(jar(req, reply));
  }
}
