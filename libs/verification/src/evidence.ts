// Evidence bundles: a provider's signed receipt for a wrong result, the outputs it sent, the job spec
// and the reference it was compared with. Anyone can check one offline with `verifyEvidence` (or
// `gpumesh verify-evidence <file>`): signature and signer, receipt ↔ outputs and inputs, then a
// recomputation of the job on the CPU that must disagree with the accused outputs beyond the bound.
//
// Version 2 splits a bundle in two: the commitment (every field but `disclosed`) names the job's
// inputs and outputs by tensor digest and its model by content hash; `disclosed` carries the bytes
// (inputs, outputs, model weights), each checked against its commitment. The evidence hash covers the
// commitment only, so a redacted bundle (a developer's private inputs, outputs and model left out of
// `disclosed`) hashes to the same on-chain evidence hash as the full one.
import { createHash } from 'node:crypto';

import { keccak256 } from 'ethers';
import { z } from 'zod';

import { computeReference, type ModelArtifact } from '@gpumesh/compute';
import {
  canonicalJson,
  hashSpec,
  JobSpecSchema,
  Sha256HexSchema,
  canonicalBytes,
  sha256Hex,
  signedMessageSchema,
  tensorDigest,
  TensorWireSchema,
  UuidSchema,
  verifySigned,
  type JobSpec,
  type ResultReceipt,
  type Signed,
  isTensorRef,
  type TensorRef,
  type TensorWire,
} from '@gpumesh/protocol';

import { compareOutputs, type Agreement, type Bound } from './compare.js';

/** The `type` every bundle carries (and that its hash therefore commits to). */
export const EVIDENCE_TYPE = 'gpumesh/evidence';
export const EVIDENCE_VERSION = 2;
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

/** A model artifact as the commitment names it: content hash and format. */
const ArtifactCommitmentSchema = z.strictObject({
  hash: Sha256HexSchema,
  format: z.enum(['layers', 'graph']),
});

/** A tensor as the commitment names it (@gpumesh/protocol `tensorDigest`): name, dtype, shape and SHA-256. */
const TensorDigestSchema = z.strictObject({
  name: z.string().min(1).max(128),
  dtype: z.string().min(1).max(16),
  shape: z.array(z.number().int().min(0)).max(8),
  sha256: Sha256HexSchema,
});
type TensorDigestEntry = z.output<typeof TensorDigestSchema>;
const DigestsSchema = z.array(TensorDigestSchema).min(1, { error: 'expected at least one tensor' }).max(64);

const BoundSchema = z.strictObject({ relativeL2: z.number().min(0), absolute: z.number().min(0) });

/** Non-finite figures (a NaN mismatch) travel as null: canonical JSON has no Infinity. */
const FigureSchema = z.number().min(0).nullable();

const ReceiptSchema = signedMessageSchema('receipt');
const TensorsSchema = z.array(TensorWireSchema).min(1, { error: 'expected at least one output' }).max(64);

/**
 * The bytes a bundle discloses, each checked against its commitment: the job's input tensors, the
 * accused and reference outputs, the model artifact(s). Left out of the evidence hash.
 */
const DisclosedSchema = z.strictObject({
  inputs: z.array(TensorWireSchema).max(64).optional(),
  accusedOutputs: TensorsSchema.optional(),
  referenceOutputs: TensorsSchema.optional(),
  artifacts: z.array(EvidenceArtifactSchema).max(4).optional(),
});
export type EvidenceDisclosure = z.output<typeof DisclosedSchema>;

export const EvidenceBundleSchema = z.strictObject({
  type: z.literal(EVIDENCE_TYPE),
  version: z.literal(EVIDENCE_VERSION, { error: `expected evidence bundle version ${EVIDENCE_VERSION}` }),
  job: z.strictObject({
    id: UuidSchema,
    /** The job spec with `inputs` replaced by their digests (as `hashSpec` hashes it). */
    spec: z.record(z.string(), z.unknown(), { error: 'expected the job spec object' }),
    specHash: Sha256HexSchema,
    /** The opaque ids the job's attempts were offered under (receipts name these, not `id`). */
    offerIds: z.array(UuidSchema).min(1).max(16).optional(),
  }),
  accused: z.strictObject({ receipt: ReceiptSchema, outputs: DigestsSchema }),
  reference: z.strictObject({
    source: z.enum(REFERENCE_SOURCES),
    outputs: DigestsSchema,
    receipts: z.array(ReceiptSchema).max(8).optional(),
  }),
  artifacts: z.array(ArtifactCommitmentSchema).max(4).optional(),
  /** The comparison of the accused outputs with the reference when the bundle was built. */
  verdict: z.strictObject({
    agree: z.boolean(),
    reason: z.string().max(1000).optional(),
    maxRelativeL2: FigureSchema,
    maxAbs: FigureSchema,
    bound: BoundSchema,
  }),
  createdAt: z.number().int().min(0),
  disclosed: DisclosedSchema.optional(),
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
 * of @gpumesh/p2p): SHA-256 over the UTF-8 of `canonicalJson(modelJson)` followed by the weight bytes.
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

/** Artifacts of a bundle (disclosed ones) as `@gpumesh/compute` model artifacts. */
export function evidenceArtifacts(bundle: Pick<EvidenceBundle, 'disclosed'>): ModelArtifact[] {
  return (bundle.disclosed?.artifacts ?? []).map(fromEvidenceArtifact);
}

function fromEvidenceArtifact(a: EvidenceArtifact): ModelArtifact {
  return {
    format: a.format,
    modelJson: a.modelJson,
    weights: new Uint8Array(Buffer.from(a.weights, 'base64')),
  };
}

function digests(tensors: readonly (TensorWire | TensorRef)[]): TensorDigestEntry[] {
  return tensors
    .map(tensorDigest)
    .map((d) => ({ ...d, shape: [...d.shape] }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Assembles a full evidence bundle (commitment and every byte disclosed) and records the comparison
 * of the accused outputs with the reference (verdict and the bounds used). It does not check
 * anything: `verifyEvidence` does. `redactEvidence` derives what strangers may see.
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
  const artifacts = (input.artifacts ?? []).map(toEvidenceArtifact);
  return {
    type: EVIDENCE_TYPE,
    version: EVIDENCE_VERSION,
    job: {
      id: input.job.id,
      spec: { ...input.job.spec, inputs: digests(input.job.spec.inputs) },
      specHash: input.job.specHash,
      ...(input.job.offerIds === undefined || input.job.offerIds.length === 0
        ? {}
        : { offerIds: [...new Set(input.job.offerIds)] }),
    },
    accused: { receipt: input.accused.receipt, outputs: digests(input.accused.outputs) },
    reference: {
      source: input.reference.source,
      outputs: digests(input.reference.outputs),
      ...(input.reference.receipts === undefined ? {} : { receipts: [...input.reference.receipts] }),
    },
    ...(artifacts.length === 0
      ? {}
      : { artifacts: artifacts.map((a) => ({ hash: a.hash, format: a.format })) }),
    verdict: verdictOf(agreement),
    createdAt: input.createdAt ?? Date.now(),
    disclosed: {
      // inputs by ref are not copied into the bundle (they may be up to 1 GiB each): withheld
      ...(input.job.spec.inputs.some(isTensorRef)
        ? {}
        : { inputs: input.job.spec.inputs.filter((t): t is TensorWire => !isTensorRef(t)) }),
      accusedOutputs: [...input.accused.outputs],
      referenceOutputs: [...input.reference.outputs],
      ...(artifacts.length === 0 ? {} : { artifacts }),
    },
  };
}

/** The commitment of a bundle: everything but `disclosed` (what the evidence hash covers). */
export function evidenceCommitment(bundle: EvidenceBundle): Omit<EvidenceBundle, 'disclosed'> {
  const { disclosed: _disclosed, ...commitment } = bundle;
  return commitment;
}

/** Canonical JSON of a bundle as served and stored (sorted keys, no whitespace; @gpumesh/protocol `canonicalJson`). */
export function canonicalEvidence(bundle: EvidenceBundle): string {
  return canonicalJson(bundle);
}

/**
 * keccak256 of the canonical JSON of the bundle's commitment (`disclosed` left out): the hash a slash
 * cites on chain, the same for the full and every redacted form of a bundle.
 */
export function evidenceHash(bundle: EvidenceBundle): `0x${string}` {
  return keccak256(new TextEncoder().encode(canonicalJson(evidenceCommitment(bundle)))) as `0x${string}`;
}

export interface RedactionOptions {
  /** Content hashes of model artifacts that are public: their bytes stay in the bundle. */
  readonly publicArtifacts?: ReadonlySet<string>;
}

/**
 * The bundle a stranger may see: the commitment whole (same evidence hash), the bytes of public model
 * artifacts, and none of the job's inputs or outputs (a developer's data).
 */
export function redactEvidence(bundle: EvidenceBundle, opts: RedactionOptions = {}): EvidenceBundle {
  const artifacts = (bundle.disclosed?.artifacts ?? []).filter((a) => opts.publicArtifacts?.has(a.hash));
  const commitment = evidenceCommitment(bundle);
  return artifacts.length === 0 ? commitment : { ...commitment, disclosed: { artifacts } };
}

/** What a bundle leaves out, in words (empty for a full bundle). */
export function withheldFrom(bundle: EvidenceBundle, extraArtifacts: readonly string[] = []): string[] {
  const withheld: string[] = [];
  if (bundle.disclosed?.inputs === undefined) withheld.push('the job inputs');
  if (bundle.disclosed?.accusedOutputs === undefined) withheld.push('the accused outputs');
  if (bundle.disclosed?.referenceOutputs === undefined) withheld.push('the reference outputs');
  const have = new Set([...(bundle.disclosed?.artifacts ?? []).map((a) => a.hash), ...extraArtifacts]);
  for (const a of bundle.artifacts ?? []) if (!have.has(a.hash)) withheld.push(`the model ${a.hash}`);
  return withheld;
}

export interface VerifyEvidenceOptions {
  /** Backend of the recomputation (default `cpu`). */
  readonly backend?: 'wasm' | 'cpu';
  /** Refuse to recompute jobs costing more (default `DEFAULT_EVIDENCE_MAX_WORK_UNITS`). */
  readonly maxWorkUnits?: bigint;
  /** Model artifacts supplied beside the bundle (a redacted bundle's model, e.g. from a file). */
  readonly artifacts?: readonly ModelArtifact[];
}

export interface EvidenceVerification {
  /** True when every check passed and the accused outputs disagree with the recomputation. */
  valid: boolean;
  /**
   * True when every check the bundle allows passed: for a full bundle the same as `valid`; for a
   * redacted one, its commitment is consistent (signatures, receipts ↔ committed digests, spec hash)
   * but the recomputation could not run (see `withheld`).
   */
  consistent: boolean;
  /** What the bundle withholds, so the job could not be recomputed (empty for a full bundle). */
  withheld: string[];
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

function digestSetHash(domain: 'inputs' | 'outputs', list: readonly TensorDigestEntry[]): string {
  return sha256Hex(
    canonicalBytes(
      domain,
      [...list].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    ),
  );
}

/** Disclosed tensors must be exactly the committed ones (by digest). */
function matchesDigests(tensors: readonly TensorWire[], committed: readonly TensorDigestEntry[]): boolean {
  return canonicalJson(digests(tensors)) === canonicalJson(sortedDigests(committed));
}

function sortedDigests(list: readonly TensorDigestEntry[]): TensorDigestEntry[] {
  return [...list].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Checks an evidence bundle offline. Valid means the accusation holds: the bundle is well formed,
 * the spec matches its hash, the accused receipt is signed by the provider it names, covers this job,
 * its inputs and exactly the accused outputs; the reference receipts (if any) check out the same way
 * and come from other providers; every disclosed byte matches its commitment; and a recomputation of
 * the job on the CPU (within a work budget) agrees with the bundle's reference and disagrees with the
 * accused outputs beyond the bound. A redacted bundle (inputs, outputs or model withheld) can only be
 * `consistent`: its commitment checks out, but the job cannot be recomputed.
 */
export async function verifyEvidence(
  input: unknown,
  opts: VerifyEvidenceOptions = {},
): Promise<EvidenceVerification> {
  const checks: string[] = [];
  const invalid = (reasons: string[]): EvidenceVerification => ({
    valid: false,
    consistent: false,
    withheld: [],
    reasons,
    checks,
  });
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
  const reasons: string[] = [];
  const committedSpec = bundle.job.spec;
  if (sha256Hex(canonicalBytes('spec', committedSpec)) !== bundle.job.specHash)
    reasons.push('job.specHash is not the hash of job.spec');
  else checks.push('spec hash matches');
  const committedInputs = TensorDigestSchema.array().safeParse(committedSpec.inputs);
  if (!committedInputs.success) return { ...invalid(['job.spec.inputs: expected tensor digests']), hash };

  const inputHash = digestSetHash('inputs', committedInputs.data);
  const checkReceipt = (
    raw: unknown,
    label: string,
    outputs: readonly TensorDigestEntry[],
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
    if (receipt.payload.outputHash !== digestSetHash('outputs', outputs))
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

  // Disclosed bytes against their commitments.
  const disclosed = bundle.disclosed ?? {};
  if (disclosed.inputs !== undefined) {
    if (!matchesDigests(disclosed.inputs, committedInputs.data))
      reasons.push('disclosed.inputs do not match the digests in job.spec.inputs');
    else checks.push('disclosed inputs match their digests');
  }
  if (disclosed.accusedOutputs !== undefined) {
    if (!matchesDigests(disclosed.accusedOutputs, bundle.accused.outputs))
      reasons.push(
        'disclosed.accusedOutputs do not match accused.outputs: outputHash does not match (tampered outputs?)',
      );
    else checks.push('disclosed accused outputs match their digests');
  }
  if (disclosed.referenceOutputs !== undefined) {
    if (!matchesDigests(disclosed.referenceOutputs, bundle.reference.outputs))
      reasons.push('disclosed.referenceOutputs do not match reference.outputs');
    else checks.push('disclosed reference outputs match their digests');
  }
  const committedArtifacts = new Set((bundle.artifacts ?? []).map((a) => a.hash));
  const artifacts: ModelArtifact[] = [];
  for (const [i, a] of (disclosed.artifacts ?? []).entries()) {
    const artifact = fromEvidenceArtifact(a);
    if (modelArtifactHash(artifact) !== a.hash)
      reasons.push(`disclosed.artifacts[${i}]: content does not match its hash`);
    else if (!committedArtifacts.has(a.hash))
      reasons.push(`disclosed.artifacts[${i}]: ${a.hash} is not committed in artifacts`);
    else artifacts.push(artifact);
  }
  const supplied: string[] = [];
  for (const artifact of opts.artifacts ?? []) {
    const h = modelArtifactHash(artifact);
    if (!committedArtifacts.has(h)) {
      reasons.push(`the supplied model ${h} is not one this bundle commits to`);
      continue;
    }
    checks.push(`the supplied model matches the committed hash ${h}`);
    artifacts.push(artifact);
    supplied.push(h);
  }
  const kind = committedSpec.kind;
  const model = (committedSpec.model as { hash?: unknown } | undefined)?.hash;
  if (kind !== 'matmul' && (typeof model !== 'string' || !committedArtifacts.has(model)))
    reasons.push(`the model ${String(model)} of this ${String(kind)} job is not committed in the bundle`);
  if (reasons.length > 0) return { valid: false, consistent: false, withheld: [], reasons, checks, hash };

  const withheld = withheldFrom(bundle, supplied);
  if (
    disclosed.inputs === undefined ||
    disclosed.accusedOutputs === undefined ||
    disclosed.referenceOutputs === undefined ||
    (kind !== 'matmul' && !artifacts.some((a) => modelArtifactHash(a) === model))
  ) {
    return {
      valid: false,
      consistent: true,
      withheld,
      reasons: [`redacted bundle: cannot recompute the job without ${withheld.join(', ')}`],
      checks,
      hash,
    };
  }
  const specParsed = JobSpecSchema.safeParse({ ...committedSpec, inputs: disclosed.inputs });
  if (!specParsed.success) {
    return {
      ...invalid([
        `job.spec with the disclosed inputs is not a valid job spec: ${specParsed.error.issues[0]?.message ?? ''}`,
      ]),
      hash,
    };
  }
  const spec: JobSpec = specParsed.data;
  if (hashSpec(spec) !== bundle.job.specHash)
    return { ...invalid(['job.spec with the disclosed inputs does not hash to job.specHash']), hash };
  const modelJson =
    spec.kind === 'matmul'
      ? undefined
      : modelJsonObject(artifacts.find((a) => modelArtifactHash(a) === model)!);

  let recomputed: TensorWire[];
  const backend = opts.backend ?? 'cpu';
  try {
    recomputed = await computeReference(spec, {
      artifacts,
      backend,
      maxWorkUnits: opts.maxWorkUnits ?? DEFAULT_EVIDENCE_MAX_WORK_UNITS,
    });
  } catch (err) {
    return { ...invalid([`cannot recompute the job: ${message(err)}`]), consistent: true, hash };
  }
  checks.push(`recomputed the job on ${backend}`);
  const context = { spec, modelJson };
  const witness = compareOutputs(recomputed, disclosed.referenceOutputs, context);
  if (!witness.agree) {
    reasons.push(`the bundle's reference disagrees with the recomputation: ${witness.reason ?? ''}`);
  } else {
    checks.push(`the bundle's reference agrees with the recomputation`);
  }
  const comparison = compareOutputs(recomputed, disclosed.accusedOutputs, context);
  if (comparison.agree) {
    reasons.push(
      `the accused outputs agree with the recomputation (max relative L2 ${comparison.maxRelativeL2.toExponential(2)} ≤ ${comparison.bound.relativeL2.toExponential(2)}): an honest result`,
    );
  } else {
    checks.push(`the accused outputs disagree with the recomputation: ${comparison.reason ?? ''}`);
  }
  const valid = reasons.length === 0;
  return {
    valid,
    consistent: valid,
    withheld: [],
    reasons,
    checks,
    comparison,
    bound: comparison.bound,
    hash,
  };
}
