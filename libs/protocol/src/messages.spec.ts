import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { GPU_BACKENDS, parseProviderAdvert, safeParseProviderAdvert } from './advert.js';
import { BACKENDS, parseBackend, safeParseBackend } from './backend.js';
import { MAX_ADVERT_TTL_MS, MAX_GFLOPS_PER_GPU } from './constants.js';
import { parseJobSpec } from './job-spec.js';
import {
  jobOfferJsonSchema,
  jobSpecJsonSchema,
  providerAdvertJsonSchema,
  resultReceiptJsonSchema,
} from './json-schema.js';
import { parseJobOffer, randomNonce, safeParseJobOffer } from './offer.js';
import { parseResultReceipt, safeParseResultReceipt } from './receipt.js';
import {
  NOW,
  advertInput,
  inferenceSpecInput,
  offerInput,
  receiptInput,
  trainSpecInput,
} from './test-fixtures.js';

function viaJson<T>(value: T): unknown {
  return JSON.parse(JSON.stringify(value)) as unknown;
}

const amountArb = fc.bigInt({ min: 0n, max: 10n ** 30n }).map(String);
const timeArb = fc.integer({ min: 0, max: 2 ** 45 });

describe('Backend', () => {
  it('lists backends best first and parses them', () => {
    expect(BACKENDS).toEqual(['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu']);
    expect(parseBackend('wasm')).toBe('wasm');
    expect(safeParseBackend('cuda').success).toBe(false);
  });
});

describe('ProviderAdvert', () => {
  it('round-trips through JSON for arbitrary valid field values (property)', async () => {
    const base = await advertInput();
    fc.assert(
      fc.property(
        fc.record({
          seq: fc.nat(),
          backend: fc.constantFrom(...GPU_BACKENDS), // the base advert lists 1 GPU: only these may
          gflops: fc.double({ min: 0.001, max: MAX_GFLOPS_PER_GPU, noNaN: true }),
          pricePerUnit: amountArb,
          slots: fc.integer({ min: 1, max: 64 }),
          ttl: fc.integer({ min: 1, max: MAX_ADVERT_TTL_MS }),
        }),
        ({ ttl, slots, ...fields }) => {
          const advert = parseProviderAdvert({
            ...base,
            ...fields,
            slots,
            freeSlots: slots,
            expiresAt: NOW + ttl,
          });
          expect(parseProviderAdvert(viaJson(advert))).toEqual(advert);
        },
      ),
    );
  });

  it('normalises the address to lower case', async () => {
    const advert = parseProviderAdvert(await advertInput());
    expect(advert.address).toMatch(/^0x[0-9a-f]{40}$/);
  });

  it('names each bad field', async () => {
    const base = await advertInput();
    const result = safeParseProviderAdvert({
      ...base,
      expiresAt: NOW + MAX_ADVERT_TTL_MS + 1,
      freeSlots: 9,
      gflops: 0,
      address: '0x1234',
      gpus: [{ model: 'A100', vramMiB: -1 }],
    });
    expect(result.success).toBe(false);
    if (result.success) return;
    expect(result.error.code).toBe('INVALID_MESSAGE');
    const paths = result.error.issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['gflops', 'address', 'gpus[0].vramMiB']));
    expect(result.error.message).toContain('gflops: expected finite number > 0');
    const window = safeParseProviderAdvert({ ...base, expiresAt: NOW + MAX_ADVERT_TTL_MS + 1, freeSlots: 9 });
    expect(!window.success && window.error.message).toContain(
      'expiresAt: expected at most 600000 ms after issuedAt',
    );
    expect(!window.success && window.error.message).toContain('freeSlots: expected freeSlots <= slots');
    const past = safeParseProviderAdvert({ ...base, expiresAt: NOW });
    expect(!past.success && past.error.message).toContain('expiresAt: expected expiresAt > issuedAt');
  });

  it('requires the binding to name the advert peer and address', async () => {
    const base = await advertInput();
    const result = safeParseProviderAdvert({
      ...base,
      peerId: '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK',
    });
    expect(!result.success && result.error.message).toContain('binding.peerId: expected the advert peerId');
  });
});

describe('JobOffer', () => {
  it('round-trips through JSON for each job kind (property)', () => {
    const specs = [inferenceSpecInput(), trainSpecInput()].map((s) => parseJobSpec(s));
    fc.assert(
      fc.property(
        fc.constantFrom(...specs),
        fc.integer({ min: 1, max: 100 }),
        fc.bigInt({ min: 1n, max: 10n ** 20n }).map(String),
        timeArb,
        (spec, attempt, workUnits, issuedAt) => {
          const offer = parseJobOffer({
            ...offerInput(spec),
            attempt,
            workUnits,
            pricePerUnit: '1',
            issuedAt,
            deadlineAt: issuedAt + 1,
            nonce: randomNonce(),
          });
          expect(parseJobOffer(viaJson(offer))).toEqual(offer);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('rejects a price above the spec maximum, zero work units and a bad job id', () => {
    const result = safeParseJobOffer({
      ...offerInput(),
      pricePerUnit: '1001',
      workUnits: '0',
      jobId: 'job-1',
    });
    expect(result.success).toBe(false);
    if (result.success) return;
    expect(result.error.message).toContain('pricePerUnit: expected at most spec.maxPricePerUnit');
    expect(result.error.message).toContain('workUnits: expected at least 1 work unit');
    expect(result.error.message).toContain('jobId: expected UUID');
  });

  it('never throws on a malformed price (refinements see only valid amounts)', () => {
    const result = safeParseJobOffer({ ...offerInput(), pricePerUnit: '1.5' });
    expect(!result.success && result.error.message).toContain(
      'pricePerUnit: expected decimal integer string',
    );
  });
});

describe('ResultReceipt', () => {
  it('round-trips through JSON (property)', () => {
    fc.assert(
      fc.property(
        fc.record({ queuedMs: fc.nat(), runMs: fc.nat() }),
        fc.nat(),
        fc.constantFrom(...BACKENDS),
        timeArb,
        ({ queuedMs, runMs }, extra, backend, finishedAt) => {
          const receipt = parseResultReceipt({
            ...receiptInput(),
            backend,
            finishedAt,
            timings: { queuedMs, runMs, totalMs: runMs + extra },
          });
          expect(parseResultReceipt(viaJson(receipt))).toEqual(receipt);
        },
      ),
    );
  });

  it('names bad fields', () => {
    const result = safeParseResultReceipt({
      ...receiptInput(),
      outputHash: 'xyz',
      timings: { queuedMs: 0, runMs: 5, totalMs: 1 },
    });
    expect(!result.success && result.error.message).toContain('outputHash: expected sha256');
    expect(!result.success && result.error.message).toContain('timings.totalMs: expected totalMs >= runMs');
  });
});

describe('JSON Schemas', () => {
  it('describes each message for API docs', () => {
    for (const schema of [
      jobSpecJsonSchema(),
      providerAdvertJsonSchema(),
      jobOfferJsonSchema(),
      resultReceiptJsonSchema(),
    ]) {
      expect(JSON.stringify(schema)).toContain('"version"');
    }
    expect(JSON.stringify(jobSpecJsonSchema())).toContain('"matmul"');
  });
});
