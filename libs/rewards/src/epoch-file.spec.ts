import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { describe, expect, it } from 'vitest';

import { auditEpoch } from './audit.js';
import { EpochProofs } from './claim.js';
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
const DOMAIN = { chainId: 31337, distributor: '0x00000000000000000000000000000000000000D1' };

describe('closeEpoch', () => {
  it('adds credits to the previous cumulative amounts and keeps indices permanent', () => {
    const e1 = closeEpoch(
      new Map(),
      [
        { provider: B, receipts: [{ id: 'r2', amount: 5n }] },
        { provider: A, receipts: [{ id: 'r1', amount: 3n }] },
        { provider: B, receipts: [{ id: 'r3', amount: 1n }] },
      ],
      { epoch: 1, ...DOMAIN },
    );
    expect(e1.leaves.map((l) => [l.index, l.account, l.cumulativeAmount, l.receipts])).toEqual([
      [0, A, '3', [{ id: 'r1', amount: '3' }]],
      [
        1,
        B.toLowerCase(),
        '6',
        [
          { id: 'r2', amount: '5' },
          { id: 'r3', amount: '1' },
        ],
      ],
    ]);
    expect(e1.distributor).toBe(DOMAIN.distributor.toLowerCase());
    expect(e1.total).toBe('9');
    const e2 = closeEpoch(
      cumulativeFromEpochFile(e1),
      [
        { provider: C, receipts: [{ id: 'r4', amount: 2n }] },
        { provider: A, receipts: [{ id: 'r5', amount: 1n }] },
      ],
      { epoch: 2, ...DOMAIN },
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
    const credits = [
      {
        provider: A,
        receipts: [
          { id: 'x', amount: 2n },
          { id: 'a', amount: 1n },
        ],
      },
    ];
    const one = closeEpoch(new Map(), credits, { epoch: 1, ...DOMAIN });
    const two = closeEpoch(new Map(), [...credits], { epoch: 1, ...DOMAIN });
    expect(serializeEpochFile(one)).toBe(serializeEpochFile(two));
    expect(parseEpochFile(serializeEpochFile(one))).toEqual(one);
    expect(epochFileHash(parseEpochFile(JSON.stringify(one, null, 2)))).toBe(epochFileHash(one));
  });

  it('refuses a receipt twice, non-positive amounts, debits that do not add up, and uint64 overflow', () => {
    expect(() =>
      closeEpoch(
        new Map(),
        [
          { provider: A, receipts: [{ id: 'r', amount: 1n }] },
          { provider: B, receipts: [{ id: 'r', amount: 1n }] },
        ],
        { epoch: 1, ...DOMAIN },
      ),
    ).toThrow(/twice/);
    expect(() =>
      closeEpoch(new Map(), [{ provider: A, receipts: [{ id: 'r', amount: 0n }] }], { epoch: 1, ...DOMAIN }),
    ).toThrow(/positive/);
    expect(() =>
      closeEpoch(new Map(), [{ provider: A, receipts: [{ id: 'r', amount: 2n }] }], {
        epoch: 1,
        ...DOMAIN,
        debits: [{ account: DEV, amount: 1n }],
      }),
    ).toThrow(/debits/);
    expect(() =>
      closeEpoch(
        new Map([[A, { index: 0, cumulativeAmount: (1n << 64n) - 1n }]]),
        [{ provider: A, receipts: [{ id: 'r', amount: 1n }] }],
        { epoch: 2, ...DOMAIN },
      ),
    ).toThrow(/uint64/);
  });
});

describe('auditEpoch', () => {
  const book = new EpochCreditBook();
  for (let i = 0; i < 50; i++) book.credit(i % 2 ? A : B, DEV, BigInt(100 + i), `job-${i}`);
  const file = closeEpoch(new Map(), book.credits(), { epoch: 1, ...DOMAIN, debits: book.debits() });
  const hash = epochFileHash(file);

  it('passes the published file, whose tree OpenZeppelin loads with the same root and proofs', () => {
    expect(auditEpoch(file, file.root, hash, { domain: DOMAIN })).toMatchObject({ ok: true, problems: [] });
    const oz = StandardMerkleTree.load(
      JSON.parse(JSON.stringify(file.tree)) as Parameters<typeof StandardMerkleTree.load<string[]>>[0],
    );
    expect(oz.root).toBe(file.root);
    const ticket = new EpochProofs(file).ticket(A)!;
    const position = file.leaves.findIndex((l) => l.account === A);
    expect(oz.getProof(position)).toEqual(ticket.proof);
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
        { ...file.leaves[0], receipts: [...file.leaves[0].receipts, file.leaves[1].receipts[0]] },
        ...file.leaves.slice(1),
      ],
    };
    expect(auditEpoch(stolen, file.root, hash).problems.map((p) => p.code)).toContain('DUPLICATE_RECEIPT');
    const noReceipts = { ...file, leaves: [{ ...file.leaves[0], receipts: [] }, ...file.leaves.slice(1)] };
    expect(auditEpoch(noReceipts, file.root, hash).problems.map((p) => p.code)).toContain('MISSING_RECEIPTS');
    const underpaid = {
      ...file,
      leaves: [
        {
          ...file.leaves[0],
          receipts: [{ ...file.leaves[0].receipts[0], amount: '1' }, ...file.leaves[0].receipts.slice(1)],
        },
        ...file.leaves.slice(1),
      ],
    };
    expect(auditEpoch(underpaid, file.root, hash).problems.map((p) => p.code)).toContain('MISSING_RECEIPTS');
    const forgedTree = {
      ...file,
      tree: { ...file.tree!, tree: [file.root, ...file.tree!.tree.slice(2), file.root] },
    };
    expect(auditEpoch(forgedTree, file.root, hash).problems.map((p) => p.code)).toContain('TREE_MISMATCH');
    const movedValue = {
      ...file,
      tree: {
        ...file.tree!,
        values: [
          { ...file.tree!.values[0], treeIndex: file.tree!.values[1].treeIndex },
          ...file.tree!.values.slice(1),
        ],
      },
    };
    expect(auditEpoch(movedValue, file.root, hash).problems.map((p) => p.code)).toContain('TREE_MISMATCH');
    expect(
      auditEpoch(file, file.root, hash, { domain: { ...DOMAIN, chainId: 1 } }).problems.map((p) => p.code),
    ).toEqual(['DOMAIN_MISMATCH']);
    const sameIndex = { ...file, leaves: [file.leaves[0], { ...file.leaves[1], index: 0 }] };
    expect(auditEpoch(sameIndex, file.root, hash).problems.map((p) => p.code)).toContain('DUPLICATE_INDEX');
    expect(auditEpoch({ ...file, debits: [] }, file.root, hash).problems.map((p) => p.code)).toEqual([
      'CHAIN_FILE_HASH_MISMATCH',
    ]);
    expect(auditEpoch('not json', file.root, hash).problems[0].code).toBe('INVALID_FILE');
  });
});
