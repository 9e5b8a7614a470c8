// The dashboard's only link to the coordinator: its REST API under /v1/admin and its live streams.
// The bodies are typed by @gpumesh/sdk/types (generated from docs/openapi.json, which the
// coordinator's decorators produce): a type-only import, so nothing of the SDK is bundled.
import type { HistoryDto } from '@gpumesh/sdk/types';

export type HistoryRange = HistoryDto['range'];

/** The address of a CSV export (the browser downloads it with the session cookie). */
export function exportUrl(table: 'jobs' | 'ledger' | 'epochs', filters?: URLSearchParams): string {
  const query = new URLSearchParams(filters);
  query.set('format', 'csv');
  return `/v1/admin/export/${table}?${query.toString()}`;
}

export const CSRF_HEADER = 'x-gpumesh-csrf';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

interface ErrorBody {
  error?: { code?: string; message?: string };
}

let onUnauthenticated: (() => void) | null = null;

/** Called when a request finds the session gone (expired, signed out elsewhere). */
export function setUnauthenticatedHandler(handler: (() => void) | null): void {
  onUnauthenticated = handler;
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (method !== 'GET') headers[CSRF_HEADER] = '1';
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'NETWORK', 'The coordinator cannot be reached.');
  }
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) {
    const err = (parsed as ErrorBody | null)?.error;
    if (response.status === 401 && !path.endsWith('/session')) onUnauthenticated?.();
    throw new ApiError(response.status, err?.code ?? 'HTTP_ERROR', err?.message ?? `HTTP ${response.status}`);
  }
  return parsed as T;
}

/** After a live stream was refused: when the session is gone, the sign-in page shows. */
export async function confirmSession(): Promise<void> {
  try {
    await request('GET', '/v1/admin/session');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) onUnauthenticated?.();
  }
}

export const get = <T>(path: string): Promise<T> => request<T>('GET', path);
export const post = <T>(path: string, body?: unknown): Promise<T> => request<T>('POST', path, body);
export const del = <T>(path: string, body?: unknown): Promise<T> => request<T>('DELETE', path, body);
export const put = <T>(path: string, body?: unknown): Promise<T> => request<T>('PUT', path, body);
