import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { epochFilesToDrop, type HeldEpochFile } from './epoch-retention.js';

const heldFiles = fc.uniqueArray(
  fc.record({
    distributor: fc.constantFrom('0xaa', '0xbb'),
    epoch: fc.integer({ min: 1, max: 200 }),
    concernsHolder: fc.boolean(),
  }),
  { selector: (f) => `${f.distributor}:${f.epoch}`, maxLength: 60 },
);

describe('epochFilesToDrop', () => {
  it('keeps every file of the holder and the newest N others (property)', () => {
    fc.assert(
      fc.property(heldFiles, fc.integer({ min: 0, max: 20 }), (files: HeldEpochFile[], keep) => {
        const dropped = epochFilesToDrop(files, keep);
        const kept = files.filter((f) => !dropped.includes(f));
        expect(dropped.every((f) => !f.concernsHolder)).toBe(true);
        expect(kept.filter((f) => f.concernsHolder)).toHaveLength(
          files.filter((f) => f.concernsHolder).length,
        );
        const others = files.filter((f) => !f.concernsHolder);
        const keptOthers = kept.filter((f) => !f.concernsHolder);
        expect(keptOthers).toHaveLength(Math.min(keep, others.length));
        for (const d of dropped) for (const k of keptOthers) expect(d.epoch).toBeLessThanOrEqual(k.epoch);
      }),
    );
  });

  it('drops nothing under the bound, and the oldest first beyond it', () => {
    const f = (epoch: number, concernsHolder = false): HeldEpochFile => ({
      distributor: '0xaa',
      epoch,
      concernsHolder,
    });
    expect(epochFilesToDrop([f(1), f(2)], 2)).toEqual([]);
    expect(epochFilesToDrop([f(3), f(1, true), f(2), f(4)], 1)).toEqual([f(2), f(3)]);
  });
});
