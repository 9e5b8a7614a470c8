import { DomainError } from '../common/domain-error.js';

/** The dashboard's session cookie and CSRF header. */
export const ADMIN_COOKIE = 'gpumesh_admin';
/** Cookie-authenticated requests that change anything must carry this header (any non-empty value). */
export const CSRF_HEADER = 'x-gpumesh-csrf';
/** The cookie is sent only to the admin API. */
export const ADMIN_COOKIE_PATH = '/v1/admin';

/** Reads one cookie from a `Cookie` request header. */
export function readCookie(header: string | string[] | undefined, name: string): string | null {
  const raw = Array.isArray(header) ? header.join('; ') : header;
  if (!raw) return null;
  for (const part of raw.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) {
      const value = part.slice(eq + 1).trim();
      return value.length > 0 ? value : null;
    }
  }
  return null;
}

/** The `Set-Cookie` value of the session cookie: httpOnly, SameSite=Strict, scoped to the admin API. */
export function sessionCookie(token: string, maxAgeSeconds: number, secure: boolean): string {
  return [
    `${ADMIN_COOKIE}=${token}`,
    `Path=${ADMIN_COOKIE_PATH}`,
    `Max-Age=${maxAgeSeconds}`,
    'HttpOnly',
    'SameSite=Strict',
    ...(secure ? ['Secure'] : []),
  ].join('; ');
}

export function clearedSessionCookie(secure: boolean): string {
  return sessionCookie('', 0, secure);
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function isSafeMethod(method: string): boolean {
  return SAFE_METHODS.has(method.toUpperCase());
}

/**
 * CSRF defence for cookie-authenticated changes (on top of SameSite=Strict): the custom header,
 * which a cross-site page cannot send without a CORS preflight (refused here), and a same-host Origin.
 */
export function checkCsrf(request: { headers: Record<string, string | string[] | undefined> }): void {
  const marker = request.headers[CSRF_HEADER];
  if (typeof marker !== 'string' || marker.length === 0) {
    throw new DomainError(
      'FORBIDDEN',
      `changes made with the dashboard cookie need the ${CSRF_HEADER} header`,
    );
  }
  const origin = request.headers.origin;
  const host = request.headers.host;
  if (typeof origin === 'string' && origin !== 'null' && typeof host === 'string') {
    let originHost: string;
    try {
      originHost = new URL(origin).host;
    } catch {
      originHost = '';
    }
    if (originHost !== host) throw new DomainError('FORBIDDEN', 'cross-origin request refused');
  } else if (origin === 'null') {
    throw new DomainError('FORBIDDEN', 'cross-origin request refused');
  }
}
