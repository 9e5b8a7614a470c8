import { CanActivate, ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { DomainError } from '../common/domain-error.js';
import { AuthService } from './auth.service.js';
import { IS_PUBLIC, OPTIONAL_AUTH, REQUIRED_SCOPES, type RequestWithPrincipal } from './auth.decorators.js';
import type { ApiScope } from './principal.js';

/** Reads `Authorization: Bearer <key>` (or `x-api-key`) on every non-public route and checks scopes. */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly auth: AuthService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    const request = context.switchToHttp().getRequest<RequestWithPrincipal>();
    if (this.reflector.getAllAndOverride<boolean>(OPTIONAL_AUTH, targets)) {
      const sent = extractToken(request.headers);
      if (sent) request.principal = await this.auth.authenticate(sent);
      return true;
    }
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, targets)) return true;
    const token = extractToken(request.headers);
    if (!token) {
      throw new DomainError('UNAUTHENTICATED', 'missing credentials: send "Authorization: Bearer <api key>"');
    }
    const principal = await this.auth.authenticate(token);
    const required = this.reflector.getAllAndOverride<ApiScope[] | undefined>(REQUIRED_SCOPES, targets) ?? [];
    const missing = required.filter(
      (scope) => !principal.scopes.has(scope) && !principal.scopes.has('admin'),
    );
    if (missing.length > 0) {
      throw new DomainError('FORBIDDEN', `this key lacks the scope(s) ${missing.join(', ')}`, { missing });
    }
    request.principal = principal;
    return true;
  }
}

export function extractToken(headers: Record<string, string | string[] | undefined>): string | null {
  const authorization = headers.authorization;
  if (typeof authorization === 'string') {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match) {
      throw new DomainError('UNAUTHENTICATED', 'Authorization header must be "Bearer <api key>"');
    }
    return match[1];
  }
  const apiKey = headers['x-api-key'];
  return typeof apiKey === 'string' && apiKey.length > 0 ? apiKey : null;
}
