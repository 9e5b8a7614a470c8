import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';

import { auditEpoch, type AuditOptions } from './audit.js';
import { EpochCreditBook } from './credit-book.js';
import { EpochAuditor } from './epoch-auditor.js';
import { splitEpochFile } from './epoch-file-split.js';
import {
  closeEpoch,
  cumulativeFromEpochFile,
  epochFileHash,
  serializeEpochFile,
  type EpochFile,
} from './epoch-file.js';

const A = '0x00000000000000000000000000000000000000aa';
const B = '0x00000000000000000000000000000000000000bb';
const C = '0x00000000000000000000000000000000000000cc';
const DEV = '0x00000000000000000000000000000000000000dd';
const DOMAIN = { chainId: 31337, distributor: '0x00000000000000000000000000000000000000d1' };

const book = new EpochCreditBook();
for (let i = 0; i < 30; i++) book.credit([A, B, C][i % 3], DEV, BigInt(100 + i), `job-${i}`);
const file = closeEpoch(new Map(), book.credits(), { epoch: 1, ...DOMAIN, debits: book.debits() });
const hash = epochFileHash(file);
const next = closeEpoch(
  cumulativeFromEpochFile(file),
  [{ provider: B, receipts: [{ id: 'job-next', amount: 7n }] }],
  { epoch: 2, ...DOMAIN },
);

const auditor = new EpochAuditor();
afterAll(() => auditor.close());

type Outcome = { report: unknown } | { error: string };

/** The two-thread audit's outcome equals auditEpoch's, report for report (or the same error). */
async function expectSameAudit(
  input: Uint8Array | string,
  root = file.root,
  fileHash = hash,
  options: AuditOptions = { domain: DOMAIN },
): Promise<void> {
  let slow: Outcome;
  try {
    slow = { report: auditEpoch(input, root, fileHash, options) };
  } catch (err) {
    slow = { error: String(err) };
  }
  let fast: Outcome;
  try {
    fast = { report: await auditor.audit(input, root, fileHash, options) };
  } catch (err) {
    fast = { error: String(err) };
  }
  expect(fast).toEqual(slow);
}

/** Each form the watcher may be given: the canonical text and its bytes. */
async function expectSameForBoth(tampered: EpochFile, options?: AuditOptions): Promise<void> {
  const text = serializeEpochFile(tampered);
  await expectSameAudit(text, file.root, hash, options);
  await expectSameAudit(Buffer.from(text), file.root, hash, options);
}

describe('EpochAuditor', () => {
  it('passes the published file on two threads, as auditEpoch does', async () => {
    const before = { ...auditor.stats };
    const report = await auditor.audit(Buffer.from(serializeEpochFile(file)), file.root, hash, {
      domain: DOMAIN,
    });
    expect(report).toMatchObject({ ok: true, problems: [], root: file.root, fileHash: hash });
    // The report's file is the whole file, tree included (read when first asked for).
    expect(report.file).toEqual(file);
    expect(auditor.stats.twoThreads).toBe(before.twoThreads + 1);
    await expectSameForBoth(file);
    await expectSameAudit(serializeEpochFile(next), next.root, epochFileHash(next), {
      domain: DOMAIN,
      previous: file,
    });
  });

  it('gives auditEpoch’s report for every kind of tampering, on two threads or falling back to one', async () => {
    const leaf0 = file.leaves[0];
    const values = file.tree!.values;
    const tampered: EpochFile[] = [
      { ...file, leaves: [{ ...leaf0, cumulativeAmount: '1' }, ...file.leaves.slice(1)] },
      { ...file, leaves: [{ ...leaf0, epochAmount: '1' }, ...file.leaves.slice(1)] },
      {
        ...file,
        leaves: [
          { ...leaf0, receipts: [...leaf0.receipts, file.leaves[1].receipts[0]] },
          ...file.leaves.slice(1),
        ],
      },
      { ...file, leaves: [{ ...leaf0, receipts: [] }, ...file.leaves.slice(1)] },
      { ...file, leaves: [file.leaves[0], { ...file.leaves[1], index: 0 }, file.leaves[2]] },
      { ...file, leaves: [file.leaves[1], file.leaves[0], file.leaves[2]] },
      { ...file, leaves: file.leaves.slice(1) },
      { ...file, total: '1', cumulativeTotal: '2' },
      { ...file, debits: [] },
      { ...file, root: `0x${'00'.repeat(32)}` },
      { ...file, epoch: 7, chainId: 5 },
      { ...file, tree: { ...file.tree!, tree: [file.root, ...file.tree!.tree.slice(2), file.root] } },
      { ...file, tree: { ...file.tree!, tree: file.tree!.tree.slice(1) } },
      {
        ...file,
        tree: {
          ...file.tree!,
          values: [{ ...values[0], treeIndex: values[1].treeIndex }, ...values.slice(1)],
        },
      },
      {
        ...file,
        tree: { ...file.tree!, values: [{ ...values[0], value: [...values[0].value] }, ...values.slice(1)] },
      },
      {
        ...file,
        tree: {
          ...file.tree!,
          values: values.map((v) => ({
            ...v,
            value: ['1', v.value[1], v.value[2], v.value[3], v.value[4]] as const,
          })),
        },
      },
      { ...file, tree: { ...file.tree!, values: values.slice(1) } },
      { ...file, tree: { ...file.tree!, leafEncoding: ['uint256'] } },
      { ...file, tree: null },
      // A leaf amount beyond uint256: the tree cannot be built (auditEpoch throws).
      { ...file, leaves: [{ ...leaf0, cumulativeAmount: '9'.repeat(80) }, ...file.leaves.slice(1)] },
      // Receipt ids that hold the member the file is cut at.
      {
        ...file,
        leaves: [
          { ...leaf0, receipts: [{ id: '"tree":{"x":1}', amount: leaf0.epochAmount }] },
          ...file.leaves.slice(1),
        ],
      },
    ];
    const before = { ...auditor.stats };
    for (const t of tampered) await expectSameForBoth(t);
    // Both paths were taken: arithmetic found on two threads, a forged tree on one.
    expect(auditor.stats.twoThreads).toBeGreaterThan(before.twoThreads + 10);
    expect(auditor.stats.oneThread).toBeGreaterThan(before.oneThread + 10);
    await expectSameForBoth(file, { domain: { ...DOMAIN, chainId: 1 } });
    await expectSameForBoth(file, { domain: DOMAIN, previous: next });
    await expectSameAudit(serializeEpochFile(file), `0x${'11'.repeat(32)}`, `0x${'22'.repeat(32)}`);
    // Not canonical: pretty-printed, a repeated tree member, trailing text.
    const text = serializeEpochFile(file);
    await expectSameAudit(JSON.stringify(JSON.parse(text), null, 2));
    await expectSameAudit(`{"tree":null,${text.slice(1)}`);
    await expectSameAudit(`${text.slice(0, -1)},"tree":{}}`);
    await expectSameAudit(`${text}\n`);
    // Leaves the scan must not be fooled by: a later member named leaves (escaped, or repeated as is,
    // where JSON.parse keeps the last), a receipt id repeated, whitespace inside the array.
    const leavesJson = JSON.stringify(file.leaves);
    await expectSameAudit(text.replace(',"root":', ',"\\u006ceaves":[],"root":'));
    await expectSameAudit(
      text.replace(',"root":', `,"leaves":${JSON.stringify(file.leaves.slice(1))},"root":`),
    );
    await expectSameAudit(text.replace(leavesJson, leavesJson.replace('"id":"job-1"', '"id":"job-0"')));
    await expectSameAudit(text.replace('"leaves":[{', '"leaves":[ {'));
    await expectSameAudit(`${text}x`);
    await expectSameAudit(`${text.slice(0, -1)}`);
    await expectSameAudit('not json');
    await expectSameAudit('');
  });

  it('gives auditEpoch’s report for the file with any bytes changed', async () => {
    const text = serializeEpochFile(file);
    const chars = ['0', '1', 'a', 'f', '"', ',', ':', '{', '}', '[', ']', ' ', '\\', 'é'];
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat({ max: text.length - 1 }), fc.constantFrom(...chars)), {
          minLength: 1,
          maxLength: 3,
        }),
        fc.boolean(),
        async (edits, asBytes) => {
          let mutated = text;
          for (const [at, c] of edits) mutated = mutated.slice(0, at) + c + mutated.slice(at + 1);
          await expectSameAudit(asBytes ? Buffer.from(mutated) : mutated);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('starts another worker after close', async () => {
    await auditor.close();
    const before = { ...auditor.stats };
    await expectSameForBoth(file);
    expect(auditor.stats.twoThreads).toBe(before.twoThreads + 2);
  });
});

describe('splitEpochFile', () => {
  it('cuts only where the halves parse to what the whole text parses to', () => {
    const member = fc.oneof(
      fc.constant('tree'),
      fc.constantFrom('format', 'leaves', 'root', '"tree":{'),
      fc.string({ maxLength: 4 }),
    );
    const value = fc.letrec<{ v: unknown }>((tie) => ({
      v: fc.oneof(
        { depthSize: 'small' },
        fc.oneof(fc.integer(), fc.string({ maxLength: 8 }), fc.constant(null), fc.constant('"tree":{')),
        fc.array(tie('v'), { maxLength: 3 }),
        fc.dictionary(member, tie('v'), { maxKeys: 3 }),
      ),
    })).v;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(member, value), { maxLength: 5 }),
        fc.constantFrom(undefined, 1, '\t'),
        fc.boolean(),
        (members, indent, asBytes) => {
          const text = `{${members.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v, null, indent)}`).join(',')}}`;
          const split = splitEpochFile(asBytes ? Buffer.from(text) : text);
          if (!split) return;
          let head: Record<string, unknown>;
          let tree: unknown;
          try {
            head = JSON.parse(split.head()) as Record<string, unknown>;
            tree = JSON.parse(split.tree());
          } catch {
            return;
          }
          expect({ ...head, tree }).toEqual(JSON.parse(text));
        },
      ),
      { numRuns: 500 },
    );
  });
});
