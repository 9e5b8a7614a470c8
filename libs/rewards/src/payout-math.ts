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
  /** What left the provider for the treasury: min(requested, bonded + unbonding). */
  readonly slashed: bigint;
}

/** `ProviderStaking.slash`: bonded stake goes first, then what is unbonding. */
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
