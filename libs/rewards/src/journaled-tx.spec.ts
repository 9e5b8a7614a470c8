import { describe, expect, it } from 'vitest';

import { MIN_BUMP_PERCENT, bumpedFees, type FeePolicy } from './journaled-tx.js';

const GWEI = 1_000_000_000n;
const policy: FeePolicy = { bumpAfterMs: 1_000, bumpPercent: MIN_BUMP_PERCENT, maxFeePerGas: 500n * GWEI };
const previous = { maxFeePerGas: 40n * GWEI, maxPriorityFeePerGas: 2n * GWEI };

describe('bumpedFees', () => {
  it('raises both fields by at least the bump percentage (rounded up)', () => {
    const fees = bumpedFees(previous, { baseFee: 1n * GWEI, tip: 1n * GWEI }, policy)!;
    expect(fees.maxFeePerGas).toBe(45n * GWEI);
    expect(fees.maxPriorityFeePerGas).toBe(2_250_000_000n);
    const odd = bumpedFees({ maxFeePerGas: 7n, maxPriorityFeePerGas: 1n }, { baseFee: 0n, tip: 0n }, policy)!;
    expect(odd).toEqual({ maxFeePerGas: 8n, maxPriorityFeePerGas: 2n });
  });

  it('follows the current base fee when it needs more than the bump', () => {
    const fees = bumpedFees(previous, { baseFee: 100n * GWEI, tip: 3n * GWEI }, policy)!;
    expect(fees).toEqual({ maxFeePerGas: 203n * GWEI, maxPriorityFeePerGas: 3n * GWEI });
  });

  it('stops at the cap, and gives up when the cap leaves no room for a valid replacement', () => {
    const capped = bumpedFees(
      previous,
      { baseFee: 100n * GWEI, tip: 1n * GWEI },
      { ...policy, maxFeePerGas: 60n * GWEI },
    );
    expect(capped?.maxFeePerGas).toBe(60n * GWEI);
    expect(
      bumpedFees(
        { ...previous, maxFeePerGas: 60n * GWEI },
        { baseFee: 100n * GWEI, tip: GWEI },
        {
          ...policy,
          maxFeePerGas: 60n * GWEI,
        },
      ),
    ).toBeNull();
    expect(
      bumpedFees(previous, { baseFee: 0n, tip: 0n }, { ...policy, maxFeePerGas: 44n * GWEI }),
    ).toBeNull();
  });

  it('never bumps by less than the minimum nodes accept', () => {
    const fees = bumpedFees(previous, { baseFee: 0n, tip: 0n }, { ...policy, bumpPercent: 1 })!;
    expect(fees.maxFeePerGas).toBe(45n * GWEI);
  });
});
