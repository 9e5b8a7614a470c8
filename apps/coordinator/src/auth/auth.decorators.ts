import { ExecutionContext, SetMetadata, createParamDecorator } from '@nestjs/common';
import type { ApiScope, Principal } from './principal.js';

export const IS_PUBLIC = 'gpumesh:public';
export const REQUIRED_SCOPES = 'gpumesh:scopes';

/** The route needs no credentials. */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(IS_PUBLIC, true);

export const OPTIONAL_AUTH = 'gpumesh:optional-auth';

/**
 * The route needs no credentials, but when the caller sends some they are checked (a bad key is
 * refused, not ignored) and the principal is set: the route may show more to whom it knows.
 */
export const OptionalAuth = (): MethodDecorator & ClassDecorator => SetMetadata(OPTIONAL_AUTH, true);

/** The caller's credentials must carry every one of these scopes (`admin` implies all). */
export const RequireScopes = (...scopes: ApiScope[]): MethodDecorator & ClassDecorator =>
  SetMetadata(REQUIRED_SCOPES, scopes);

export interface RequestWithPrincipal {
  principal?: Principal;
  headers: Record<string, string | string[] | undefined>;
}

export const CurrentPrincipal = createParamDecorator((_data: unknown, ctx: ExecutionContext): Principal => {
  const request = ctx.switchToHttp().getRequest<RequestWithPrincipal>();
  if (!request.principal) throw new Error('CurrentPrincipal used on a public route');
  return request.principal;
});
