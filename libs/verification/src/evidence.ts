// Evidence bundles: a provider's signed receipt for a wrong result, the outputs it sent, the job spec
// and the reference it was compared with. Anyone can check one offline with `verifyEvidence` (or
// `gpumesh verify-evidence <file>`): signature and signer, receipt ↔ outputs and inputs, then a
// recomputation of the job on the CPU that must disagree with the accused outputs beyond the bound.
import { createHash } from 'node:crypto';

import { keccak256 } from 'ethers';
import { z } from 'zod';

import { computeReference, type ModelArtifact } from '#compute';
import {
  canonicalJson,
  hashOutputs,
  hashSpec,
  hashTensors,
  JobSpecSchema,
  Sha256HexSchema,
  signedMessageSchema,
  TensorWireSchema,
  UuidSchema,
  verifySigned,
  type JobSpec,
  type ResultReceipt,
  type Signed,
  type TensorWire,
} from '#protocol';

import { compareOutputs, type Agreement, type Bound } from './compare.js';

/** The `type` every bundle carries (and that its hash therefore commits to). */
export const EVIDENCE_TYPE = 'gpumesh/evidence';
export const EVIDENCE_VERSION = 1;
/** Work budget of an offline recomputation unless the caller sets one (10¹¹ FLOPs). */
export const DEFAULT_EVIDENCE_MAX_WORK_UNITS = 100_000n;

const REFERENCE_SOURCES = ['providers', 'coordinator', 'canary'] as const;
export type ReferenceSource = (typeof REFERENCE_SOURCES)[number];

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** A model artifact inside a bundle: its content hash, format, model.json and base64 weights. */
export const EvidenceArtifactSchema = z.strictObject({
  hash: Sha256HexSchema,
  format: z.enum(['layers', 'graph']),
  modelJson: z.record(z.string(), z.unknown(), { error: 'expected model.json object' }),
  weights: z
    .string({ error: 'expected base64 weights' })
    .refine((s) => s.length % 4 === 0 && BASE64.test(s), { error: 'expected padded base64 weights' }),
});
export type EvidenceArtifact = z.output<typeof EvidenceArtifactSchema>;

const BoundSchema = z.strictObject({ relativeL2: z.number().min(0), absolute: z.number().min(0) });

/** Non-finite figures (a NaN mismatch) travel as null: canonical JSON has no Infinity. */
const FigureSchema = z.number().min(0).nullable();

const ReceiptSchema = signedMessageSchema('receipt');
const TensorsSchema = z.array(TensorWireSchema).min(1, { error: 'expected at least one output' }).max(64);

export const EvidenceBundleSchema = z.strictObject({
  type: z.literal(EVIDENCE_TYPE),
  version: z.literal(EVIDENCE_VERSION),
  job: z.strictObject({
    id: UuidSchema,
    spec: JobSpecSchema,
    specHash: Sha256HexSchema,
    /** The opaque ids the job's attempts were offered under (receipts name these, not `id`). */
    offerIds: z.array(UuidSchema).min(1).max(16).optional(),
  }),
  accused: z.strictObject({ receipt: ReceiptSchema, outputs: TensorsSchema }),
  reference: z.strictObject({
    source: z.enum(REFERENCE_SOURCES),
    outputs: TensorsSchema,
    receipts: z.array(ReceiptSchema).max(8).optional(),
  }),
  artifacts: z.array(EvidenceArtifactSchema).max(4).optional(),
  /** The comparison of the accused outputs with the reference when the bundle was built. */
  verdict: z.strictObject({
    agree: z.boolean(),
    reason: z.string().max(1000).optional(),
    maxRelativeL2: FigureSchema,
    maxAbs: FigureSchema,
    bound: BoundSchema,
  }),
  createdAt: z.number().int().min(0),
});
export type EvidenceBundle = z.output<typeof EvidenceBundleSchema>;

export interface BuildEvidenceInput {
  readonly job: {
    readonly id: string;
    readonly spec: JobSpec;
    readonly specHash: string;
    /** Offer ids of the receipts' attempts when the job was offered under per-attempt ids. */
    readonly offerIds?: readonly string[];
  };
  /** The signed receipt exactly as received over p2p, and the outputs it covers. */
  readonly accused: { readonly receipt: Signed<ResultReceipt>; readonly outputs: readonly TensorWire[] };
  readonly reference: {
    readonly source: ReferenceSource;
    readonly outputs: readonly TensorWire[];
    readonly receipts?: readonly Signed<ResultReceipt>[];
  };
  /** The model artifact(s) of inference and train jobs. */
  readonly artifacts?: readonly ModelArtifact[];
  readonly createdAt?: number;
}

function modelJsonObject(artifact: ModelArtifact): Record<string, unknown> {
  return typeof artifact.modelJson === 'string'
    ? (JSON.parse(artifact.modelJson) as Record<string, unknown>)
    : artifact.modelJson;
}

/**
 * Content hash of a model artifact, the `spec.model.hash` jobs name it by (the same as `hashArtifact`
 * of #p2p): SHA-256 over the UTF-8 of `canonicalJson(modelJson)` followed by the weight bytes.
 */
export function modelArtifactHash(artifact: ModelArtifact): string {
  return createHash('sha256')
    .update(new TextEncoder().encode(canonicalJson(modelJsonObject(artifact))))
    .update(artifact.weights)
    .digest('hex');
}

function figure(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

function verdictOf(agreement: Agreement): EvidenceBundle['verdict'] {
  return {
    agree: agreement.agree,
    ...(agreement.reason === undefined ? {} : { reason: agreement.reason.slice(0, 1000) }),
    maxRelativeL2: figure(agreement.maxRelativeL2),
    maxAbs: figure(agreement.maxAbs),
    bound: { relativeL2: agreement.bound.relativeL2, absolute: agreement.bound.absolute },
  };
}

function toEvidenceArtifact(artifact: ModelArtifact): EvidenceArtifact {
  return {
    hash: modelArtifactHash(artifact),
    format: artifact.format,
    modelJson: modelJsonObject(artifact),
    weights: Buffer.from(
      artifact.weights.buffer,
      artifact.weights.byteOffset,
      artifact.weights.byteLength,
    ).toString('base64'),
  };
}

/** The artifacts of a bundle as `#compute` model artifacts. */
export function evidenceArtifacts(bundle: Pick<EvidenceBundle, 'artifacts'>): ModelArtifact[] {
  return (bundle.artifacts ?? []).map((a) => ({
    format: a.format,
    modelJson: a.modelJson,
    weights: new Uint8Array(Buffer.from(a.weights, 'base64')),
  }));
}

/**
 * Assembles an evidence bundle and records the comparison of the accused outputs with the reference
 * (verdict and the bounds used). It does not check anything: `verifyEvidence` does.
 */
export function buildEvidence(input: BuildEvidenceInput): EvidenceBundle {
  const modelJson =
    input.job.spec.kind === 'matmul'
      ? undefined
      : input.artifacts?.map(modelJsonObject).find((_, i) => {
          const artifact = input.artifacts?.[i];
          return artifact !== undefined && modelArtifactHash(artifact) === (input.job.spec.model?.hash ?? '');
        });
  const agreement = compareOutputs(input.reference.outputs, input.accused.outputs, {
    spec: input.job.spec,
    modelJson,
  });
  return {
    type: EVIDENCE_TYPE,
    version: EVIDENCE_VERSION,
    job: {
      id: input.job.id,
      spec: input.job.spec,
      specHash: input.job.specHash,
      ...(input.job.offerIds === undefined || input.job.offerIds.length === 0
        ? {}
        : { offerIds: [...new Set(input.job.offerIds)] }),
    },
    accused: { receipt: input.accused.receipt, outputs: [...input.accused.outputs] },
    reference: {
      source: input.reference.source,
      outputs: [...input.reference.outputs],
      ...(input.reference.receipts === undefined ? {} : { receipts: [...input.reference.receipts] }),
    },
    ...(input.artifacts === undefined || input.artifacts.length === 0
      ? {}
      : { artifacts: input.artifacts.map(toEvidenceArtifact) }),
    verdict: verdictOf(agreement),
    createdAt: input.createdAt ?? Date.now(),
  };
}

/** Canonical JSON of a bundle (sorted keys, no whitespace; #protocol `canonicalJson`). */
export function canonicalEvidence(bundle: EvidenceBundle): string {
  return canonicalJson(bundle);
}

/** keccak256 of `canonicalEvidence(bundle)`: the hash a slash cites on chain. */
export function evidenceHash(bundle: EvidenceBundle): `0x${string}` {
  return keccak256(new TextEncoder().encode(canonicalEvidence(bundle))) as `0x${string}`;
}

export interface VerifyEvidenceOptions {
  /** Backend of the recomputation (default `cpu`). */
  readonly backend?: 'wasm' | 'cpu';
  /** Refuse to recompute jobs costing more (default `DEFAULT_EVIDENCE_MAX_WORK_UNITS`). */
  readonly maxWorkUnits?: bigint;
}

export interface EvidenceVerification {
  /** True when every check passed and the accused outputs disagree with the recomputation. */
  valid: boolean;
  /** Why the bundle does not prove a wrong result (empty when valid). */
  reasons: string[];
  /** Checks that passed, in order (for display). */
  checks: string[];
  /** Accused outputs against the recomputed reference, when the recomputation ran. */
  comparison?: Agreement;
  /** The bounds used by that comparison. */
  bound?: Bound;
  hash?: `0x${string}`;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function rawReceipt(input: unknown, path: 'accused' | number): unknown {
  const root = input as { accused?: { receipt?: unknown }; reference?: { receipts?: unknown[] } };
  return path === 'accused' ? root.accused?.receipt : root.reference?.receipts?.[path];
}

/**
 * Checks an evidence bundle offline. Valid means the accusation holds: the bundle is well formed,
 * the spec matches its hash, the accused receipt is signed by the provider it names, covers this job,
 * its inputs and exactly the accused outputs; the reference receipts (if any) check out the same way
 * and come from other providers; and a recomputation of the job on the CPU (within a work budget)
 * agrees with the bundle's reference and disagrees with the accused outputs beyond the bound.
 */
export async function verifyEvidence(
  input: unknown,
  opts: VerifyEvidenceOptions = {},
): Promise<EvidenceVerification> {
  const checks: string[] = [];
  const invalid = (reasons: string[]): EvidenceVerification => ({ valid: false, reasons, checks });
  const parsed = EvidenceBundleSchema.safeParse(input);
  if (!parsed.success) {
    return invalid(
      parsed.error.issues
        .slice(0, 10)
        .map((i) => `bundle ${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`),
    );
  }
  const bundle = parsed.data;
  const hash = evidenceHash(bundle);
  const spec = bundle.job.spec;
  const reasons: string[] = [];
  if (hashSpec(spec) !== bundle.job.specHash) reasons.push('job.specHash is not the hash of job.spec');
  else checks.push('spec hash matches');

  const inputHash = hashTensors(spec.inputs);
  const checkReceipt = (
    raw: unknown,
    label: string,
    outputs: readonly TensorWire[],
  ): Signed<ResultReceipt> | undefined => {
    let receipt: Signed<ResultReceipt>;
    try {
      receipt = verifySigned('receipt', raw, { now: Number.MAX_SAFE_INTEGER - 1 });
    } catch (err) {
      reasons.push(`${label}: ${message(err)}`);
      return undefined;
    }
    const before = reasons.length;
    if (
      receipt.payload.jobId !== bundle.job.id &&
      !(bundle.job.offerIds ?? []).includes(receipt.payload.jobId)
    )
      reasons.push(
        `${label} is for ${receipt.payload.jobId}, neither job ${bundle.job.id} nor one of its offers`,
      );
    if (receipt.payload.inputHash !== inputHash)
      reasons.push(`${label}: inputHash does not match the spec's inputs`);
    if (receipt.payload.outputHash !== hashOutputs(outputs))
      reasons.push(`${label}: outputHash does not match the outputs in the bundle (tampered outputs?)`);
    if (reasons.length === before)
      checks.push(
        `${label} signed by ${receipt.signer} (attempt ${receipt.payload.attempt}) covers its outputs`,
      );
    return receipt;
  };
  const accused = checkReceipt(rawReceipt(input, 'accused'), 'accused receipt', bundle.accused.outputs);
  const references = (bundle.reference.receipts ?? []).map((_, i) =>
    checkReceipt(rawReceipt(input, i), `reference receipt ${i}`, bundle.reference.outputs),
  );
  if (accused) {
    for (const [i, r] of references.entries()) {
      if (r && r.signer === accused.signer)
        reasons.push(`reference receipt ${i} is signed by the accused provider ${accused.signer}`);
      if (r && r.payload.jobId === accused.payload.jobId && r.payload.attempt === accused.payload.attempt)
        reasons.push(`reference receipt ${i} is for the accused receipt's own attempt`);
    }
  }
  if (bundle.reference.source === 'providers' && references.length === 0)
    reasons.push('reference.source is "providers" but no provider receipt is included');
  if (bundle.verdict.agree) reasons.push('the bundle itself records that the outputs agree');

  const artifacts = evidenceArtifacts(bundle);
  for (const [i, a] of (bundle.artifacts ?? []).entries()) {
    if (modelArtifactHash(artifacts[i]) !== a.hash)
      reasons.push(`artifacts[${i}]: content does not match its hash`);
  }
  let modelJson: unknown;
  if (spec.kind !== 'matmul') {
    const model = (bundle.artifacts ?? []).find((a) => a.hash === spec.model.hash);
    if (!model) reasons.push(`the model ${spec.model.hash} of this ${spec.kind} job is not in the bundle`);
    modelJson = model?.modelJson;
  }
  if (reasons.length > 0) return { valid: false, reasons, checks, hash };

  let recomputed: TensorWire[];
  const backend = opts.backend ?? 'cpu';
  try {
    recomputed = await computeReference(spec, {
      artifacts,
      backend,
      maxWorkUnits: opts.maxWorkUnits ?? DEFAULT_EVIDENCE_MAX_WORK_UNITS,
    });
  } catch (err) {
    return { valid: false, reasons: [`cannot recompute the job: ${message(err)}`], checks, hash };
  }
  checks.push(`recomputed the job on ${backend}`);
  const context = { spec, modelJson };
  const witness = compareOutputs(recomputed, bundle.reference.outputs, context);
  if (!witness.agree) {
    reasons.push(`the bundle's reference disagrees with the recomputation: ${witness.reason ?? ''}`);
  } else {
    checks.push(`the bundle's reference agrees with the recomputation`);
  }
  const comparison = compareOutputs(recomputed, bundle.accused.outputs, context);
  if (comparison.agree) {
    reasons.push(
      `the accused outputs agree with the recomputation (max relative L2 ${comparison.maxRelativeL2.toExponential(2)} ≤ ${comparison.bound.relativeL2.toExponential(2)}): an honest result`,
    );
  } else {
    checks.push(`the accused outputs disagree with the recomputation: ${comparison.reason ?? ''}`);
  }
  return { valid: reasons.length === 0, reasons, checks, comparison, bound: comparison.bound, hash };
}
