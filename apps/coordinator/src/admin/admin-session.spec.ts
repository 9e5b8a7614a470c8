import { describe, expect, it } from 'vitest';
import { clearedSessionCookie, isSafeMethod, readCookie, sessionCookie } from './admin-session.js';

describe('admin session cookie', () => {
  it('reads a cookie among others', () => {
    expect(readCookie('a=1; gpumesh_admin=gms_x; b=2', 'gpumesh_admin')).toBe('gms_x');
    expect(readCookie('gpumesh_admin=', 'gpumesh_admin')).toBeNull();
    expect(readCookie(undefined, 'gpumesh_admin')).toBeNull();
    expect(readCookie(['a=1', 'gpumesh_admin=v'], 'gpumesh_admin')).toBe('v');
  });

  it('is httpOnly, SameSite=Strict and scoped to the admin API', () => {
    const c = sessionCookie('gms_abc', 3600, false);
    expect(c).toContain('HttpOnly');
    expect(c).toContain('SameSite=Strict');
    expect(c).toContain('Path=/v1/admin');
    expect(c).not.toContain('Secure');
    expect(sessionCookie('t', 1, true)).toContain('Secure');
    expect(clearedSessionCookie(false)).toContain('Max-Age=0');
  });

  it('treats only GET, HEAD and OPTIONS as safe', () => {
    expect(isSafeMethod('get')).toBe(true);
    expect(isSafeMethod('POST')).toBe(false);
    expect(isSafeMethod('DELETE')).toBe(false);
  });
});
