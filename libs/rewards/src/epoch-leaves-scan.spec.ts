import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { sumReceipts } from './audit.js';
import { EpochCreditBook } from './credit-book.js';
import { closeEpoch, serializeEpochFile, type EpochFile, type EpochLeaf } from './epoch-file.js';
import { scanEpochLeaves, type ScannedLeaves } from './epoch-leaves-scan.js';

const DOMAIN = { chainId: 31337, distributor: '0x00000000000000000000000000000000000000d1' };
const DEV = '0x00000000000000000000000000000000000000dd';
const LEAVES_MEMBER = '"leaves":';

const provider = (i: number): string => `0x${i.toString(16).padStart(40, '0')}`;

/** The scan of `text`'s leaves member (the first one), as the auditor takes it. */
function scanText(text: string): ScannedLeaves | null {
  const bytes = Buffer.from(text, 'utf8');
  return scanEpochLeaves(bytes, bytes.indexOf(LEAVES_MEMBER) + LEAVES_MEMBER.length);
}

/** What the scan must give for these leaves: their positions and their receipts' facts. */
function expectFactsOf(scanned: ScannedLeaves, leaves: readonly EpochLeaf[]): void {
  expect(scanned.positions).toEqual(leaves.map(({ receipts: _, ...position }) => position));
  expect(scanned.receipts.sums).toEqual(leaves.map((l) => sumReceipts(l.receipts).sum));
  expect([...scanned.receipts.counts]).toEqual(leaves.map((l) => l.receipts.length));
  expect([...scanned.receipts.zero]).toEqual(leaves.map((l) => (sumReceipts(l.receipts).zero ? 1 : 0)));
}

function fileOf(
  credits: readonly { provider: string; receipts: { id: string; amount: bigint }[] }[],
): EpochFile {
  return closeEpoch(new Map(), credits, { epoch: 1, ...DOMAIN });
}

describe('scanEpochLeaves', () => {
  it('reads a canonical file’s leaves as JSON.parse does, receipts summed, for any ids and amounts', () => {
    const printable = fc.string({ unit: fc.constantFrom(...'abz09:-_ ./#'.split('')), minLength: 1 });
    const amount = fc.oneof(
      fc.bigInt({ min: 1n, max: 10n ** 15n }),
      fc.bigInt({ min: 10n ** 15n, max: 10n ** 17n }),
    );
    fc.assert(
      fc.property(
        fc.array(fc.uniqueArray(printable, { minLength: 1, maxLength: 6 }), { minLength: 0, maxLength: 6 }),
        fc.array(amount, { minLength: 36, maxLength: 36 }),
        (idsPerProvider, amounts) => {
          // Ids unique across the file (a receipt is credited once).
          const credits = idsPerProvider.map((ids, i) => ({
            provider: provider(i + 1),
            receipts: ids.map((id, k) => ({ id: `${i}/${id}`, amount: amounts[(i * 6 + k) % 36] })),
          }));
          const file = fileOf(credits);
          const text = serializeEpochFile(file);
          const scanned = scanText(text);
          expect(scanned).not.toBeNull();
          expectFactsOf(scanned!, file.leaves);
          expect(JSON.parse(text.slice(scanned!.start, scanned!.end))).toEqual(file.leaves);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('gives up on ids it does not read byte for byte (escapes, non-ASCII, control characters)', () => {
    for (const id of ['say "hi"', 'back\\slash', 'café', 'tab\there', '\u0001']) {
      const file = fileOf([{ provider: provider(1), receipts: [{ id, amount: 5n }] }]);
      expect(scanText(serializeEpochFile(file))).toBeNull();
    }
  });

  it('gives up on a receipt id credited twice, in one leaf or in two, and not on ids whose hashes meet', () => {
    const twice = serializeEpochFile(
      fileOf([
        { provider: provider(1), receipts: [{ id: 'job-1', amount: 5n }] },
        { provider: provider(2), receipts: [{ id: 'job-2', amount: 5n }] },
      ]),
    );
    expect(scanText(twice)).not.toBeNull();
    expect(scanText(twice.replace('"job-2"', '"job-1"'))).toBeNull();
    expect(
      scanText(
        twice.replace(
          '{"amount":"5","id":"job-1"}',
          '{"amount":"5","id":"job-1"},{"amount":"5","id":"job-1"}',
        ),
      ),
    ).toBeNull();
    // These two share their 32-bit FNV-1a hash: told apart by their bytes.
    const colliding = fileOf([
      {
        provider: provider(1),
        receipts: [
          { id: 'job-439599', amount: 1n },
          { id: 'job-622382', amount: 2n },
        ],
      },
    ]);
    const scanned = scanText(serializeEpochFile(colliding));
    expect(scanned).not.toBeNull();
    expectFactsOf(scanned!, colliding.leaves);
  });

  it('never accepts bytes that JSON.parse reads otherwise, whatever is changed', () => {
    const book = new EpochCreditBook();
    for (let i = 0; i < 12; i++) book.credit(provider((i % 3) + 1), DEV, BigInt(1 + i * 50), `job-${i}`);
    const file = closeEpoch(new Map(), book.credits(), { epoch: 1, ...DOMAIN });
    const text = serializeEpochFile(file);
    const start = text.indexOf(LEAVES_MEMBER) + LEAVES_MEMBER.length;
    const end = text.indexOf(',"root":');
    const chars = ['0', '1', '9', 'a', 'f', 'A', '"', ',', ':', '{', '}', '[', ']', ' ', '\\', '-', 'é'];
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: start, max: end - 1 }), fc.constantFrom(...chars)), {
          minLength: 1,
          maxLength: 3,
        }),
        (edits) => {
          let mutated = text;
          for (const [at, c] of edits) mutated = mutated.slice(0, at) + c + mutated.slice(at + 1);
          const scanned = scanText(mutated);
          if (scanned === null) return;
          // Accepted: the bytes it read are one JSON value, the leaves it gave.
          const bytes = Buffer.from(mutated, 'utf8');
          const leaves = JSON.parse(
            bytes.subarray(scanned.start, scanned.end).toString('utf8'),
          ) as EpochLeaf[];
          expectFactsOf(scanned, leaves);
          const ids = leaves.flatMap((l) => l.receipts.map((r) => r.id));
          expect(new Set(ids).size).toBe(ids.length);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('reads an empty leaves array, and refuses one cut short', () => {
    const empty = fileOf([]);
    const scanned = scanText(serializeEpochFile(empty));
    expect(scanned).not.toBeNull();
    expect(scanned!.positions).toEqual([]);
    const one = serializeEpochFile(fileOf([{ provider: provider(1), receipts: [{ id: 'j', amount: 3n }] }]));
    const bytes = Buffer.from(one);
    const at = bytes.indexOf(LEAVES_MEMBER) + LEAVES_MEMBER.length;
    const full = scanEpochLeaves(bytes, at)!;
    for (let limit = at; limit < full.end; limit++) expect(scanEpochLeaves(bytes, at, limit)).toBeNull();
    expect(scanEpochLeaves(bytes, at, full.end)).not.toBeNull();
  });
});
