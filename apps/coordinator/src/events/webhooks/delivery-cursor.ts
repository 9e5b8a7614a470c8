// The opaque cursor of the delivery log's pages: the last delivery of a page (newest first).
import type { DeliveryCursor } from './webhooks.repository.js';
import { decodePageCursor, encodePageCursor } from '../../common/page-cursor.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The cursor of the page after `d`. */
export function encodeDeliveryCursor(d: { createdAt: Date; id: string }): string {
  return encodePageCursor(d.createdAt, d.id);
}

/** The delivery a cursor names, or null when it is not one this API returned. */
export function decodeDeliveryCursor(cursor: string): DeliveryCursor | null {
  const at = decodePageCursor(cursor, UUID);
  return at && { createdAt: at.createdAt, id: at.key };
}
