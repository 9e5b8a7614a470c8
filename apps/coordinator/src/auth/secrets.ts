import { createHash, randomBytes } from 'node:crypto';

export const API_KEY_PREFIX = 'gmk_';
export const SESSION_PREFIX = 'gms_';

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** A new API key: the secret (shown once), the hash to store, and a short public prefix to recognise it. */
export function newApiKey(): { secret: string; hash: string; prefix: string } {
  const secret = `${API_KEY_PREFIX}${randomBytes(24).toString('base64url')}`;
  return { secret, hash: sha256Hex(secret), prefix: secret.slice(0, API_KEY_PREFIX.length + 6) };
}

export function newSessionToken(): { token: string; hash: string } {
  const token = `${SESSION_PREFIX}${randomBytes(32).toString('base64url')}`;
  return { token, hash: sha256Hex(token) };
}

/** SIWE nonces are alphanumeric (EIP-4361). */
export function newNonce(): string {
  return randomBytes(12).toString('hex');
}

/** Hides all but the recognisable prefix of a token, for logs. */
export function redactToken(token: string): string {
  return token.length <= 10 ? '***' : `${token.slice(0, 10)}…`;
}
