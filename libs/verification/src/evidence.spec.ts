import { describe, expect, it } from 'vitest';

import { artifactHash } from '@gpumesh/compute';
import { hashArtifact } from '@gpumesh/p2p';

import {
  canonicalEvidence,
  EvidenceBundleSchema,
  evidenceHash,
  modelArtifactHash,
  redactEvidence,
  verifyEvidence,
} from './evidence.js';
import { signPayloads } from '@gpumesh/protocol';

import { ACCUSED_WALLET, bundleAgainst, floats, mapValues, OTHER_WALLET_FOR_TESTS } from './test-fixtures.js';

describe('evidence bundles', () => {
  it('proves a wrong result: valid, with the checks that passed', async () => {
    const bundle = await bundleAgainst('noise-1e-3');
    expect(EvidenceBundleSchema.parse(JSON.parse(JSON.stringify(bundle)))).toBeTruthy();
    expect(bundle.verdict.agree).toBe(false);
    const result = await verifyEvidence(JSON.parse(JSON.stringify(bundle)));
    expect(result.reasons).toEqual([]);
    expect(result.valid).toBe(true);
    expect(result.checks.join('\n')).toMatch(/accused receipt signed by 0x/);
    expect(result.hash).toBe(evidenceHash(bundle));
  });

  it('hashes the canonical JSON with keccak256 (key order does not matter)', async () => {
    const bundle = await bundleAgainst('zeros');
    const { createdAt, ...rest } = bundle;
    const reordered = JSON.parse(JSON.stringify({ createdAt, ...rest })) as typeof bundle;
    expect(canonicalEvidence(reordered)).toBe(canonicalEvidence(bundle));
    expect(evidenceHash(bundle)).toMatch(/^0x[0-9a-f]{64}$/);
    expect(evidenceHash({ ...bundle, createdAt: bundle.createdAt + 1 })).not.toBe(evidenceHash(bundle));
  });

  it('is invalid against an honest result', async () => {
    const result = await verifyEvidence(await bundleAgainst('honest'));
    expect(result.valid).toBe(false);
    expect(result.reasons.join('\n')).toMatch(/agree/);
  });

  it('is invalid with tampered accused outputs, naming the outputHash', async () => {
    const bundle = await bundleAgainst('zeros');
    const tampered = structuredClone(bundle);
    const outputs = (tampered.disclosed?.accusedOutputs ?? []).map((t) =>
      mapValues(t, (v) => v.map((x) => x + 1)),
    );
    tampered.disclosed = { ...tampered.disclosed, accusedOutputs: outputs };
    const result = await verifyEvidence(tampered);
    expect(result.valid).toBe(false);
    expect(result.reasons.join('\n')).toMatch(/outputHash does not match/);
    expect(floats(outputs[0])[0]).toBe(1);
    // The same evidence hash: tampering with disclosed bytes is caught by their commitment, not the hash.
    expect(evidenceHash(tampered)).toBe(evidenceHash(bundle));
  });

  it('is invalid with a forged signature or a receipt signed by someone else', async () => {
    const bundle = await bundleAgainst('zeros');
    const forged = structuredClone(bundle);
    const sig = forged.accused.receipt.signature;
    forged.accused.receipt = {
      ...forged.accused.receipt,
      signature: `${sig.slice(0, 10)}${sig[10] === 'a' ? 'b' : 'a'}${sig.slice(11)}`,
    };
    const r1 = await verifyEvidence(forged);
    expect(r1.valid).toBe(false);
    expect(r1.reasons.join('\n')).toMatch(/accused receipt: .*(signature|Signed)/i);

    const swapped = structuredClone(bundle);
    swapped.accused.receipt = {
      ...swapped.accused.receipt,
      signer: OTHER_WALLET_FOR_TESTS.address.toLowerCase(),
    };
    const r2 = await verifyEvidence(swapped);
    expect(r2.valid).toBe(false);
    expect(r2.reasons[0]).toMatch(/accused receipt/);
  });

  it('holds with a receipt signed in a batch (its Merkle proof), and not with a tampered proof', async () => {
    const bundle = await bundleAgainst('zeros');
    const own = bundle.accused.receipt.payload;
    const [, batched] = await signPayloads(
      'receipt',
      [{ ...own, attempt: 7 }, own, { ...own, attempt: 9 }],
      ACCUSED_WALLET,
    );
    expect(batched.batch).toMatchObject({ index: 1, size: 3 });
    const inBatch = { ...structuredClone(bundle), accused: { ...bundle.accused, receipt: batched } };
    const ok = await verifyEvidence(JSON.parse(JSON.stringify(inBatch)));
    expect(ok.reasons).toEqual([]);
    expect(ok.valid).toBe(true);

    const tampered = structuredClone(inBatch);
    tampered.accused.receipt = { ...batched, batch: { ...batched.batch!, index: 0 } };
    const bad = await verifyEvidence(tampered);
    expect(bad.valid).toBe(false);
    expect(bad.reasons[0]).toMatch(/accused receipt/);
  });

  it('is invalid when the spec does not match its hash, or for garbage', async () => {
    const bundle = await bundleAgainst('zeros');
    const wrongHash = { ...bundle, job: { ...bundle.job, specHash: 'ab'.repeat(32) } };
    expect((await verifyEvidence(wrongHash)).reasons).toContain('job.specHash is not the hash of job.spec');
    const garbage = await verifyEvidence({ hello: 'world' });
    expect(garbage.valid).toBe(false);
    expect(garbage.reasons[0]).toMatch(/^bundle /);
    expect((await verifyEvidence(null)).valid).toBe(false);
  });

  it('a redacted bundle keeps the evidence hash and is consistent, but cannot be recomputed', async () => {
    const bundle = await bundleAgainst('zeros');
    const redacted = redactEvidence(bundle);
    expect(redacted.disclosed).toBeUndefined();
    expect(evidenceHash(redacted)).toBe(evidenceHash(bundle));
    expect(canonicalEvidence(redacted)).not.toMatch(/"data"/);
    const result = await verifyEvidence(JSON.parse(JSON.stringify(redacted)));
    expect(result.valid).toBe(false);
    expect(result.consistent).toBe(true);
    expect(result.hash).toBe(evidenceHash(bundle));
    expect(result.withheld).toEqual(['the job inputs', 'the accused outputs', 'the reference outputs']);
    expect(result.checks.join('\n')).toMatch(/accused receipt signed by 0x/);
    expect(result.reasons[0]).toMatch(/redacted bundle: cannot recompute/);
    // A redacted bundle whose commitment was altered is inconsistent.
    const forged = structuredClone(redacted);
    forged.accused.outputs = forged.reference.outputs;
    const bad = await verifyEvidence(forged);
    expect(bad.consistent).toBe(false);
    expect(bad.reasons.join('\n')).toMatch(/outputHash does not match/);
  });

  it('refuses to recompute past the work budget', async () => {
    const bundle = await bundleAgainst('zeros');
    const result = await verifyEvidence(bundle, { maxWorkUnits: 0n });
    expect(result.valid).toBe(false);
    expect(result.reasons[0]).toMatch(/over the reference budget/);
  });

  it('names model artifacts by the same hash as @gpumesh/p2p and @gpumesh/compute', async () => {
    const artifact = {
      format: 'layers' as const,
      modelJson: { format: 'layers-model', modelTopology: { b: 1, a: [2] }, weightsManifest: [] },
      weights: Uint8Array.from([1, 2, 3]),
    };
    expect(modelArtifactHash(artifact)).toBe(hashArtifact(artifact.modelJson, artifact.weights));
    expect(await artifactHash(artifact)).toBe(modelArtifactHash(artifact));
  });
});
