import { describe, expect, it } from 'vitest';

import { auditEpoch } from './audit.js';
import { EpochCreditBook } from './credit-book.js';
import {
  closeEpoch,
  cumulativeFromEpochFile,
  epochFileHash,
  parseEpochFile,
  serializeEpochFile,
} from './epoch-file.js';

const A = '0x00000000000000000000000000000000000000aa';
const B = '0x00000000000000000000000000000000000000Bb';
const C = '0x00000000000000000000000000000000000000cc';
const DEV = '0x00000000000000000000000000000000000000dd';

describe('closeEpoch', () => {
  it('adds credits to the previous cumulative amounts and keeps indices permanent', () => {
    const e1 = closeEpoch(
      new Map(),
      [
        { provider: B, amount: 5n, receiptIds: ['r2'] },
        { provider: A, amount: 3n, receiptIds: ['r1'] },
        { provider: B, amount: 1n, receiptIds: ['r3'] },
      ],
      { epoch: 1 },
    );
    expect(e1.leaves.map((l) => [l.index, l.account, l.cumulativeAmount, l.receiptIds])).toEqual([
      [0, A, '3', ['r1']],
      [1, B.toLowerCase(), '6', ['r2', 'r3']],
    ]);
    expect(e1.total).toBe('9');
    const e2 = closeEpoch(
      cumulativeFromEpochFile(e1),
      [
        { provider: C, amount: 2n, receiptIds: ['r4'] },
        { provider: A, amount: 1n, receiptIds: ['r5'] },
      ],
      { epoch: 2 },
    );
    expect(e2.leaves.map((l) => [l.index, l.cumulativeAmount, l.previousAmount, l.epochAmount])).toEqual([
      [0, '4', '3', '1'],
      [1, '6', '6', '0'],
      [2, '2', '0', '2'],
    ]);
    expect(e2.cumulativeTotal).toBe('12');
    expect(auditEpoch(e2, e2.root, epochFileHash(e2), { previous: e1 }).problems).toEqual([]);
  });

  it('is deterministic and round-trips through its canonical JSON', () => {
    const credits = [{ provider: A, amount: 3n, receiptIds: ['x', 'a'] }];
    const one = closeEpoch(new Map(), credits, { epoch: 1 });
    const two = closeEpoch(new Map(), [...credits], { epoch: 1 });
    expect(serializeEpochFile(one)).toBe(serializeEpochFile(two));
    expect(parseEpochFile(serializeEpochFile(one))).toEqual(one);
    expect(epochFileHash(parseEpochFile(JSON.stringify(one, null, 2)))).toBe(epochFileHash(one));
  });

  it('refuses a receipt twice, non-positive amounts, debits that do not add up, and uint64 overflow', () => {
    expect(() =>
      closeEpoch(
        new Map(),
        [
          { provider: A, amount: 1n, receiptIds: ['r'] },
          { provider: B, amount: 1n, receiptIds: ['r'] },
        ],
        { epoch: 1 },
      ),
    ).toThrow(/twice/);
    expect(() =>
      closeEpoch(new Map(), [{ provider: A, amount: 0n, receiptIds: ['r'] }], { epoch: 1 }),
    ).toThrow(/positive/);
    expect(() =>
      closeEpoch(new Map(), [{ provider: A, amount: 2n, receiptIds: ['r'] }], {
        epoch: 1,
        debits: [{ account: DEV, amount: 1n }],
      }),
    ).toThrow(/debits/);
    expect(() =>
      closeEpoch(
        new Map([[A, { index: 0, cumulativeAmount: (1n << 64n) - 1n }]]),
        [{ provider: A, amount: 1n, receiptIds: ['r'] }],
        { epoch: 2 },
      ),
    ).toThrow(/uint64/);
  });
});

describe('auditEpoch', () => {
  const book = new EpochCreditBook();
  for (let i = 0; i < 50; i++) book.credit(i % 2 ? A : B, DEV, BigInt(100 + i), `job-${i}`);
  const file = closeEpoch(new Map(), book.credits(), { epoch: 1, debits: book.debits() });
  const hash = epochFileHash(file);

  it('passes the published file', () => {
    expect(auditEpoch(file, file.root, hash)).toMatchObject({ ok: true, problems: [] });
  });

  it('catches every kind of tampering', () => {
    const bumped = {
      ...file,
      leaves: [{ ...file.leaves[0], cumulativeAmount: '1' }, ...file.leaves.slice(1)],
    };
    expect(auditEpoch(bumped, file.root, hash).problems.map((p) => p.code)).toEqual(
      expect.arrayContaining([
        'AMOUNT_MISMATCH',
        'TOTAL_MISMATCH',
        'ROOT_MISMATCH',
        'CHAIN_ROOT_MISMATCH',
        'CHAIN_FILE_HASH_MISMATCH',
      ]),
    );
    const stolen = {
      ...file,
      leaves: [
        { ...file.leaves[0], receiptIds: [...file.leaves[0].receiptIds, file.leaves[1].receiptIds[0]] },
        ...file.leaves.slice(1),
      ],
    };
    expect(auditEpoch(stolen, file.root, hash).problems.map((p) => p.code)).toContain('DUPLICATE_RECEIPT');
    const noReceipts = { ...file, leaves: [{ ...file.leaves[0], receiptIds: [] }, ...file.leaves.slice(1)] };
    expect(auditEpoch(noReceipts, file.root, hash).problems.map((p) => p.code)).toContain('MISSING_RECEIPTS');
    const sameIndex = { ...file, leaves: [file.leaves[0], { ...file.leaves[1], index: 0 }] };
    expect(auditEpoch(sameIndex, file.root, hash).problems.map((p) => p.code)).toContain('DUPLICATE_INDEX');
    expect(auditEpoch({ ...file, debits: [] }, file.root, hash).problems.map((p) => p.code)).toEqual([
      'CHAIN_FILE_HASH_MISMATCH',
    ]);
    expect(auditEpoch('not json', file.root, hash).problems[0].code).toBe('INVALID_FILE');
  });
});
