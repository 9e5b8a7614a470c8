/** One media range of an Accept header: `type/subtype` (either may be `*`) and its quality. */
interface MediaRange {
  type: string;
  subtype: string;
  q: number;
}

function parseAccept(accept: string): MediaRange[] {
  return accept.split(',').flatMap((part) => {
    const [range = '', ...params] = part.split(';').map((p) => p.trim().toLowerCase());
    const [type, subtype] = range.split('/');
    if (!type || !subtype) return [];
    const qParam = params.find((p) => p.startsWith('q='));
    const q = qParam === undefined ? 1 : Number(qParam.slice(2));
    return Number.isFinite(q) && q >= 0 && q <= 1 ? [{ type, subtype, q }] : [];
  });
}

/** The quality an Accept header gives a media type: that of its most specific matching range, else 0. */
function qualityOf(ranges: readonly MediaRange[], mediaType: string): number {
  const [type, subtype] = mediaType.split('/');
  let best: { specificity: number; q: number } | null = null;
  for (const r of ranges) {
    const specificity =
      r.type === type && r.subtype === subtype ? 2 : r.type === type && r.subtype === '*' ? 1 : -1;
    const matches = specificity >= 0 || (r.type === '*' && r.subtype === '*');
    if (!matches) continue;
    const s = Math.max(specificity, 0);
    if (best === null || s > best.specificity) best = { specificity: s, q: r.q };
  }
  return best?.q ?? 0;
}

/**
 * Content negotiation (RFC 9110 §12.5.1) over the media types a route offers, the first being its
 * default: the offered type the Accept header rates highest; the default when there is no header,
 * on a tie, or when it rates none of them above 0 (a route answers rather than refusing with 406).
 */
export function negotiateMediaType<T extends string>(
  accept: string | undefined,
  offered: readonly [T, ...T[]],
): T {
  const [fallback] = offered;
  if (!accept) return fallback;
  const ranges = parseAccept(accept);
  let chosen = fallback;
  let chosenQ = qualityOf(ranges, fallback);
  for (const mediaType of offered.slice(1)) {
    const q = qualityOf(ranges, mediaType);
    if (q > chosenQ) {
      chosen = mediaType;
      chosenQ = q;
    }
  }
  return chosen;
}
