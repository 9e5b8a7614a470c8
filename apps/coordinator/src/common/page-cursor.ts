// The opaque cursor of a newest-first page (jobs, artifacts, tensors, webhook deliveries): the last
// item's creation time and the key that orders items of the same millisecond, as base64url of
// `<ISO time>|<key>`.

/** The cursor of the page after the item created at `createdAt` with `key`. */
export function encodePageCursor(createdAt: Date, key: string): string {
  return Buffer.from(`${createdAt.toISOString()}|${key}`).toString('base64url');
}

/** The (time, key) a cursor names, or null when it is not one `encodePageCursor` made with such a key. */
export function decodePageCursor(cursor: string, key: RegExp): { createdAt: Date; key: string } | null {
  const [iso, id, extra] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(iso ?? '');
  if (extra !== undefined || !id || !key.test(id) || Number.isNaN(createdAt.getTime())) return null;
  return { createdAt, key: id };
}
