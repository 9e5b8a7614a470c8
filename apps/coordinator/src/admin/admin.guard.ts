import {
  CanActivate,
  ExecutionContext,
  Injectable,
  SetMetadata,
  UseGuards,
  applyDecorators,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ApiBearerAuth, ApiCookieAuth, ApiHeader } from '@nestjs/swagger';
import { DomainError } from '../common/domain-error.js';
import { ApiErrors } from '../common/api-docs.js';
import { Public, type RequestWithPrincipal } from '../auth/auth.decorators.js';
import { extractToken } from '../auth/auth.guard.js';
import { AdminAuthService, type AdminPrincipal } from './admin-auth.service.js';
import { ADMIN_COOKIE, CSRF_HEADER, checkCsrf, isSafeMethod, readCookie } from './admin-session.js';

const ADMIN_ACTION = 'gpumesh:admin-action';

interface AdminRequest extends RequestWithPrincipal {
  method: string;
}

/**
 * Admin routes accept either `Authorization: Bearer <admin key>` / `x-api-key` (like the rest of
 * the API) or the dashboard's session cookie. Cookie-authenticated requests that change state must
 * carry the `x-gpumesh-csrf` header (a cross-site page cannot set it without a CORS preflight, which
 * this server refuses) and, when the browser sends an Origin, come from this host. Reads need an
 * ADMIN account; actions also need the `admin` scope.
 */
@Injectable()
export class AdminGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly sessions: AdminAuthService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<AdminRequest>();
    const principal = await this.authenticate(request);
    if (principal.role !== 'ADMIN') {
      throw new DomainError('FORBIDDEN', 'the admin API needs an admin account');
    }
    const action = this.reflector.getAllAndOverride<boolean>(ADMIN_ACTION, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (action && !principal.scopes.has('admin')) {
      throw new DomainError('FORBIDDEN', 'this action needs the admin scope', { missing: ['admin'] });
    }
    request.principal = principal;
    return true;
  }

  private async authenticate(request: AdminRequest): Promise<AdminPrincipal> {
    const bearer = extractToken(request.headers);
    if (bearer) return this.sessions.fromBearer(bearer);
    const cookie = readCookie(request.headers.cookie, ADMIN_COOKIE);
    if (!cookie) {
      throw new DomainError(
        'UNAUTHENTICATED',
        'sign in to the dashboard, or send "Authorization: Bearer <admin api key>"',
      );
    }
    if (!isSafeMethod(request.method)) checkCsrf(request);
    return this.sessions.fromCookie(cookie);
  }
}

/** An admin route: bearer key or dashboard cookie (see AdminGuard). */
export const AdminRoute = (): MethodDecorator & ClassDecorator =>
  applyDecorators(
    Public(), // the global bearer-only guard steps aside; AdminGuard authenticates instead
    UseGuards(AdminGuard),
    ApiBearerAuth(),
    ApiCookieAuth(ADMIN_COOKIE),
    ApiErrors({
      401: 'UNAUTHENTICATED or INVALID_API_KEY: no admin key or dashboard session, or an unknown, revoked or expired one',
      403: 'FORBIDDEN: not an admin account; actions also need the admin scope and, with the cookie, the x-gpumesh-csrf header',
    }),
  );

/** An admin route that changes state: needs the admin scope (and the CSRF header with the cookie). */
export const AdminAction = (): MethodDecorator =>
  applyDecorators(
    SetMetadata(ADMIN_ACTION, true),
    ApiHeader({ name: CSRF_HEADER, required: false, description: 'required with the dashboard cookie' }),
  );
