const MICRO = 1_000_000n;

/** Base units (micro-tokens, 6 decimals) as a token amount, e.g. "1,234.5678". */
export function tokens(baseUnits: string): string {
  let v: bigint;
  try {
    v = BigInt(baseUnits);
  } catch {
    return baseUnits;
  }
  const negative = v < 0n;
  if (negative) v = -v;
  const whole = (v / MICRO).toLocaleString('en-US');
  const frac = (v % MICRO).toString().padStart(6, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}${frac ? `.${frac}` : ''}`;
}

/** A share (0..1); null or absent (no data) as a dash. */
export function percent(x: number | null | undefined): string {
  return x === null || x === undefined ? '—' : `${(x * 100).toFixed(1)} %`;
}

export function seconds(x: number | null | undefined): string {
  if (x === null || x === undefined) return '—';
  if (x < 1) return `${Math.round(x * 1000)} ms`;
  if (x < 120) return `${x.toFixed(1)} s`;
  return `${(x / 60).toFixed(1)} min`;
}

export function shortId(id: string, keep = 8): string {
  return id.length <= keep * 2 + 1 ? id : `${id.slice(0, keep)}…${id.slice(-4)}`;
}

export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  // with the zone: an operator comparing with logs (UTC) must not guess
  return d.toLocaleString('en-GB', { hour12: false, timeZoneName: 'short' });
}

export function ago(iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.round(s / 60)}m ago`;
  return `${Math.round(s / 3600)}h ago`;
}
