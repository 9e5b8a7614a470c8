// The opaque cursor of the delivery log's pages: the last delivery of a page (newest first).
import type { DeliveryCursor } from './webhooks.repository.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The cursor of the page after `d`. */
export function encodeDeliveryCursor(d: { createdAt: Date; id: string }): string {
  return Buffer.from(`${d.createdAt.toISOString()}|${d.id}`).toString('base64url');
}

/** The delivery a cursor names, or null when it is not one this API returned. */
export function decodeDeliveryCursor(cursor: string): DeliveryCursor | null {
  const [iso, id, extra] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(iso ?? '');
  if (extra !== undefined || !id || !UUID.test(id) || Number.isNaN(createdAt.getTime())) return null;
  return { createdAt, id };
}
