import { describe, expect, it } from 'vitest';
import { ATTEMPT_FAULTS, attemptFault } from './attempt-faults.js';

describe('attemptFault', () => {
  it('charges the provider for what it did on the wire, never for what this coordinator did', () => {
    expect(attemptFault('TIMEOUT')).toMatchObject({ state: 'LOST', breakerLoss: true });
    expect(attemptFault('BAD_RECEIPT')).toMatchObject({ state: 'FAILED', reputation: 'forged_receipt' });
    const budget = attemptFault('BUDGET_EXHAUSTED');
    expect(budget).toMatchObject({
      reputation: null,
      penalty: null,
      breakerLoss: false,
      coordinatorFault: true,
    });
  });

  it('treats an unknown code as a plain failure without a penalty', () => {
    expect(attemptFault('SOMETHING_NEW')).toEqual({
      state: 'FAILED',
      reputation: null,
      penalty: null,
      breakerLoss: false,
    });
    expect(attemptFault('toString')).toEqual(attemptFault('SOMETHING_NEW'));
  });

  it('a lost capacity probe costs nothing; a probe answered with forged frames costs what it always does', () => {
    for (const code of Object.keys(ATTEMPT_FAULTS)) {
      const plain = attemptFault(code);
      const probe = attemptFault(code, { probe: true });
      expect(probe.state).toBe(plain.state);
      if (plain.state === 'LOST') {
        expect(probe).toMatchObject({ reputation: null, penalty: null, breakerLoss: false });
      } else {
        expect(probe).toEqual(plain);
      }
    }
    expect(attemptFault('TIMEOUT', { probe: true }).breakerLoss).toBe(false);
    expect(attemptFault('BAD_RECEIPT', { probe: true }).reputation).toBe('forged_receipt');
  });

  it('only provider faults open the breaker', () => {
    for (const fault of Object.values(ATTEMPT_FAULTS)) {
      if (fault.coordinatorFault === true) expect(fault.breakerLoss).toBe(false);
    }
  });
});
