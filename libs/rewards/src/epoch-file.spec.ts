import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import fc from 'fast-check';
import { ZeroHash } from 'ethers';
import { describe, expect, it } from 'vitest';

import { auditEpoch, sumReceipts } from './audit.js';
import { EpochProofs } from './claim.js';
import { EpochCreditBook } from './credit-book.js';
import {
  closeEpoch,
  cumulativeFromEpochFile,
  epochFileHash,
  EpochFileSchema,
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

  it("checks the funding: batches give the root, the root is the chain's, the escrow is the watched one", () => {
    const escrow = `0x${'e5'.repeat(20)}`;
    const funded = closeEpoch(new Map(), book.credits(), {
      epoch: 1,
      ...DOMAIN,
      escrow,
      fundingBatchSize: 1,
      debits: book.debits(),
    });
    const fundedHash = epochFileHash(funded);
    const codes = (f: unknown, opts: Parameters<typeof auditEpoch>[3] = {}): string[] =>
      auditEpoch(f, funded.root, fundedHash, { escrow, ...opts }).problems.map((p) => p.code);
    const root = funded.funding!.root;
    expect(codes(funded, { chainFundingRoot: root })).toEqual([]);
    // The chain holds another funding root (the settler posted batches that are not the file's).
    expect(codes(funded, { chainFundingRoot: `0x${'77'.repeat(32)}` })).toEqual([
      'CHAIN_FUNDING_ROOT_MISMATCH',
    ]);
    // A file whose funding root its debits do not give, or that names another escrow.
    const wrongRoot = { ...funded, funding: { ...funded.funding!, root: `0x${'77'.repeat(32)}` } };
    expect(codes(wrongRoot, { chainFundingRoot: root })).toEqual(
      expect.arrayContaining(['FUNDING_MISMATCH', 'CHAIN_FILE_HASH_MISMATCH']),
    );
    const otherEscrow = { ...funded, funding: { ...funded.funding!, escrow: `0x${'e6'.repeat(20)}` } };
    expect(codes(otherEscrow)).toContain('FUNDING_MISMATCH');
    // Debits with no funding at all, while the watcher knows the escrow.
    expect(codes({ ...funded, funding: null })).toContain('FUNDING_MISMATCH');
    // A file without debits needs no funding (a zero funding root).
    expect(auditEpoch(file, file.root, hash, { chainFundingRoot: ZeroHash }).problems).toEqual([]);
  });
});

describe('parseEpochFile', () => {
  const book = new EpochCreditBook();
  for (let i = 0; i < 6; i++) book.credit(i % 2 ? A : C, DEV, BigInt(7 + i), `job-${i}`);
  const text = serializeEpochFile(
    closeEpoch(new Map(), book.credits(), { epoch: 2, ...DOMAIN, debits: book.debits() }),
  );

  /** Every path to a value inside `value`, objects and arrays alike. */
  function paths(value: unknown, at: (string | number)[] = []): (string | number)[][] {
    const out: (string | number)[][] = [at];
    if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...at, i])));
    else if (typeof value === 'object' && value !== null)
      for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...at, k]));
    return out;
  }

  it('takes a well-formed file as it is, and never lets through what the schema refuses', () => {
    const good: unknown = JSON.parse(text);
    expect(parseEpochFile(good)).toBe(good); // the fast path: nothing copied
    const all = paths(good).filter((p) => p.length > 0);
    fc.assert(
      fc.property(
        fc.nat({ max: all.length - 1 }),
        fc.oneof(
          fc.constant<'delete'>('delete'),
          fc.constant<'extra'>('extra'),
          fc.jsonValue({ maxDepth: 2 }),
          fc.constantFrom(
            '0',
            '01',
            '-1',
            '1.5',
            '',
            `0x${'ab'.repeat(32)}`,
            `0x${'AB'.repeat(20)}`,
            2 ** 53,
            0,
            -1,
            1.5,
          ),
        ),
        (which, change) => {
          const value = JSON.parse(text) as Record<string | number, unknown>;
          const path = all[which];
          let parent: Record<string | number, unknown> = value;
          for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, unknown>;
          const key = path[path.length - 1];
          if (change === 'delete') {
            if (Array.isArray(parent)) parent.splice(key as number, 1);
            else delete parent[key];
          } else if (change === 'extra') {
            const target = parent[key];
            if (typeof target === 'object' && target !== null && !Array.isArray(target))
              (target as Record<string, unknown>).extra = 1;
            else parent[key] = { extra: 1 };
          } else {
            parent[key] = change;
          }
          let accepted: unknown;
          try {
            accepted = parseEpochFile(value);
          } catch {
            accepted = undefined;
          }
          // Whatever parseEpochFile accepts, fast path or not, the schema accepts too.
          if (accepted !== undefined) expect(EpochFileSchema.safeParse(value).success).toBe(true);
          else expect(EpochFileSchema.safeParse(value).success).toBe(false);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('names the field of a malformed file', () => {
    const bad = JSON.parse(text) as { leaves: { receipts: { amount: string }[] }[] };
    bad.leaves[1].receipts[0].amount = '07';
    expect(() => parseEpochFile(bad)).toThrow(/leaves\[1\]\.receipts\[0\]\.amount: a decimal integer string/);
  });
});

describe('auditEpoch input', () => {
  const book = new EpochCreditBook();
  for (let i = 0; i < 20; i++) book.credit(i % 3 ? A : B, DEV, BigInt(11 + i), `job-${i}`);
  const file = closeEpoch(new Map(), book.credits(), { epoch: 1, ...DOMAIN, debits: book.debits() });
  const text = serializeEpochFile(file);

  it('takes the bytes as fetched, the text or the parsed file alike, and hands back the file', () => {
    const hash = epochFileHash(file);
    const fromBytes = auditEpoch(new TextEncoder().encode(text), file.root, hash, { domain: DOMAIN });
    expect(fromBytes).toMatchObject({ ok: true, fileHash: hash, leafCount: file.leaves.length });
    expect(fromBytes.file).toEqual(file);
    expect(auditEpoch(text, file.root, hash)).toEqual(fromBytes);
    // Pretty-printed bytes hash otherwise, but their canonical form is what the chain holds.
    const pretty = new TextEncoder().encode(JSON.stringify(file, null, 2));
    expect(auditEpoch(pretty, file.root, hash).ok).toBe(true);
    expect(auditEpoch(new TextEncoder().encode('{'), file.root, hash)).toMatchObject({
      ok: false,
      file: null,
    });
  });
});

describe('sumReceipts', () => {
  it('is the exact sum of any amounts, small or beyond 2^53', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(fc.bigInt({ min: 0n, max: 10n ** 15n - 1n }), fc.bigInt({ min: 0n, max: 1n << 70n })),
          {
            maxLength: 60,
          },
        ),
        (amounts) => {
          const receipts = amounts.map((a, i) => ({ id: `r${i}`, amount: a.toString() }));
          expect(sumReceipts(receipts)).toEqual({
            sum: amounts.reduce((s, a) => s + a, 0n),
            zero: amounts.includes(0n),
          });
        },
      ),
    );
    // Many amounts just under 10^15: the number part is flushed before it stops being exact.
    const many = Array.from({ length: 5_000 }, (_, i) => ({ id: `r${i}`, amount: String(10 ** 15 - 1 - i) }));
    const exact = many.reduce((s, r) => s + BigInt(r.amount), 0n);
    expect(sumReceipts(many).sum).toBe(exact);
  });
});
