import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { TRAIN_LOSS_FLOOR_FRACTION, TRAIN_LOSS_RATIO, judgeTrainLoss } from './train-loss.js';

const loss = fc.double({ min: 0, max: 1e6, noNaN: true });

describe('judgeTrainLoss', () => {
  it('accepts a run that trained as well as the reference and refuses one that did not', () => {
    // The kill-an-agent e2e job: untrained 0.72, both honest runs near 5e-8.
    expect(judgeTrainLoss({ candidate: 6e-8, reference: 5e-8, initial: 0.72 }).kind).toBe('agree');
    // Both fitted down to the noise floor (1e-6 × the untrained loss): equal, whatever the ratio.
    expect(judgeTrainLoss({ candidate: 4e-7, reference: 5e-8, initial: 0.72 }).kind).toBe('agree');
    // 20 of the 300 epochs (the loss at epoch 20 of that run): refused.
    expect(judgeTrainLoss({ candidate: 1.3e-5, reference: 5e-8, initial: 0.72 }).kind).toBe('worse');
    // The untrained weights sent back as a result.
    expect(judgeTrainLoss({ candidate: 0.72, reference: 0.1, initial: 0.72 }).kind).toBe('worse');
    expect(judgeTrainLoss({ candidate: Number.POSITIVE_INFINITY, reference: 0.1, initial: 1 }).kind).toBe(
      'worse',
    );
    expect(judgeTrainLoss({ candidate: 0.1, reference: Number.NaN, initial: 1 }).kind).toBe('undecided');
  });

  it('never refuses a result at least as good as the reference, and is scale-free', () => {
    fc.assert(
      fc.property(loss, loss, loss, fc.double({ min: 1e-6, max: 1e6, noNaN: true }), (a, b, initial, k) => {
        const [better, reference] = a <= b ? [a, b] : [b, a];
        expect(judgeTrainLoss({ candidate: better, reference, initial }).kind).toBe('agree');
        const v = judgeTrainLoss({ candidate: a, reference: b, initial });
        const scaled = judgeTrainLoss({ candidate: a * k, reference: b * k, initial: initial * k });
        // Rounding of the products can move a case sitting exactly on the bound, nothing else.
        const bound = Math.max(b * TRAIN_LOSS_RATIO, TRAIN_LOSS_FLOOR_FRACTION * initial);
        if (Math.abs(a - bound) > 1e-9 * Math.max(1, bound)) expect(scaled.kind).toBe(v.kind);
      }),
    );
  });

  it('refuses anything beyond the ratio above a reference over the floor', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 1e-3, max: 1e3, noNaN: true }),
        fc.double({ min: 1.01, max: 1e6 }),
        (r, f) => {
          const initial = r; // the floor (1e-4 × r) is then below the reference
          const candidate = r * TRAIN_LOSS_RATIO * f;
          expect(judgeTrainLoss({ candidate, reference: r, initial }).kind).toBe('worse');
        },
      ),
    );
  });
});
