/**
 * The distributor's and the staking contract's arithmetic, mirrored in TypeScript for property
 * tests and for clients that want to predict a transaction's effect before sending it.
 */

/** What a claim of `cumulativeAmount` pays after `alreadyClaimed`; 0 when nothing is owed (the contract reverts). */
export function claimPayout(cumulativeAmount: bigint, alreadyClaimed: bigint): bigint {
  return cumulativeAmount > alreadyClaimed ? cumulativeAmount - alreadyClaimed : 0n;
}

/** Claimed amount after a sequence of claims (each a cumulative amount from some posted epoch). */
export function applyClaims(cumulativeAmounts: readonly bigint[]): { paid: bigint; claimed: bigint } {
  let claimed = 0n;
  let paid = 0n;
  for (const c of cumulativeAmounts) {
    const p = claimPayout(c, claimed);
    if (p > 0n) {
      paid += p;
      claimed = c;
    }
  }
  return { paid, claimed };
}

export interface StakePosition {
  readonly bonded: bigint;
  readonly unbonding: bigint;
}

export interface SlashOutcome extends StakePosition {
  /** What left the provider: min(requested, bonded + unbonding). */
  readonly slashed: bigint;
}

/** `ProviderStaking.executeSlash` taking `requested`: bonded stake goes first, then what is unbonding. */
export function applySlash(position: StakePosition, requested: bigint): SlashOutcome {
  const fromBonded = requested < position.bonded ? requested : position.bonded;
  const rest = requested - fromBonded;
  const fromUnbonding = rest < position.unbonding ? rest : position.unbonding;
  return {
    bonded: position.bonded - fromBonded,
    unbonding: position.unbonding - fromUnbonding,
    slashed: fromBonded + fromUnbonding,
  };
}

export interface SlashSplit {
  /** Each beneficiary's share, in the order of the weights: slashed × weight / Σ weights, rounded down. */
  readonly shares: bigint[];
  /** Σ shares: paid into the escrow for the beneficiaries. */
  readonly compensated: bigint;
  /** slashed − compensated: burnt (everything when there are no beneficiaries). */
  readonly burnt: bigint;
}

/** How `ProviderStaking.executeSlash` splits `slashed` between the beneficiaries and the burn. */
export function splitSlash(slashed: bigint, weights: readonly bigint[]): SlashSplit {
  const total = weights.reduce((a, w) => a + w, 0n);
  const shares = total === 0n ? weights.map(() => 0n) : weights.map((w) => (slashed * w) / total);
  const compensated = shares.reduce((a, s) => a + s, 0n);
  return { shares, compensated, burnt: slashed - compensated };
}
