/** Token decimals: ledger amounts are integer micro-tokens, the same unit on chain. */
export const TOKEN_DECIMALS = 6;

/** One whole token in base units. */
export const ONE_TOKEN = 10n ** BigInt(TOKEN_DECIMALS);

/**
 * The largest cumulative amount a leaf may carry: the distributor packs claimed amounts as uint64.
 * The ledger (PostgreSQL BIGINT) caps a balance at 2^63 − 1, below this.
 */
export const MAX_CUMULATIVE_AMOUNT = (1n << 64n) - 1n;

/** The largest balance the ledger stores (PostgreSQL BIGINT). */
export const MAX_LEDGER_AMOUNT = (1n << 63n) - 1n;

/** `1.5` tokens → `1500000n` base units. Throws on more than six decimals or a malformed number. */
export function parseTokenAmount(text: string): bigint {
  const m = /^(\d+)(?:\.(\d{1,6}))?$/.exec(text.trim());
  if (!m) throw new Error(`invalid token amount: ${text}`);
  const fraction = (m[2] ?? '').padEnd(TOKEN_DECIMALS, '0');
  return BigInt(m[1]) * ONE_TOKEN + BigInt(fraction);
}

/** `1500000n` → `'1.5'`. */
export function formatTokenAmount(amount: bigint): string {
  const sign = amount < 0n ? '-' : '';
  const abs = amount < 0n ? -amount : amount;
  const whole = abs / ONE_TOKEN;
  const fraction = (abs % ONE_TOKEN).toString().padStart(TOKEN_DECIMALS, '0').replace(/0+$/, '');
  return `${sign}${whole}${fraction ? `.${fraction}` : ''}`;
}
