import {
  ReferenceRunError,
  ReferenceRunner,
  type ModelArtifact,
  type ReferenceFailureCode,
  type ReferenceRunnerOptions,
} from '@gpumesh/compute';
import {
  isTensorRef,
  MAX_TENSOR_BYTES,
  refTensorByteLength,
  type JobSpec,
  type TensorWire,
} from '@gpumesh/protocol';
import type { ArtifactsRepository } from '../artifacts/artifacts.repository.js';

/**
 * Time limit of one coordinator reference (queue wait included) within the default budget; a bigger
 * job gets its work's time at the runner's floor rate (`referenceTimeLimitMs`). The worker is stopped
 * past it.
 */
export const REFERENCE_TIMEOUT_MS = 60_000;
/** Model artifacts kept in memory between references (canaries of one model reuse it), in bytes. */
export const REFERENCE_ARTIFACT_CACHE_BYTES = 128 * 1024 * 1024;

/** The coordinator's answer to a job, or why there is none. */
export type ReferenceOutcome =
  | {
      readonly ok: true;
      readonly outputs: TensorWire[];
      /** The losses of a `trainLossOf` computation, in its order. */
      readonly losses?: number[];
      readonly workUnits: bigint;
      readonly queuedMs: number;
      readonly runMs: number;
    }
  | { readonly ok: false; readonly code: ReferenceFailureCode; readonly reason: string };

/** Every kind can be recomputed (inference and train with the stored model artifact). */
export function canComputeReference(spec: JobSpec): boolean {
  return spec.kind === 'matmul' || spec.model !== undefined;
}

/**
 * The coordinator's own results of jobs: `@gpumesh/compute`'s `computeReference` on the CPU backend, in a
 * worker thread (ReferenceRunner) so the event loop never runs a kernel, with the stored model
 * artifact of inference and train jobs. Work over `maxWorkUnits` or beyond a full queue is refused
 * with a reason, a reference over the time limit is stopped; nothing here throws.
 */
export class CoordinatorReference {
  private readonly runner: ReferenceRunner;
  private readonly cache = new Map<string, ModelArtifact>();
  private cachedBytes = 0;

  constructor(
    private readonly artifacts: Pick<ArtifactsRepository, 'findWhole'>,
    options: ReferenceRunnerOptions,
    /** The element bytes of an uploaded tensor (a job input by ref), by sha256. */
    private readonly tensorBytes?: (sha256: string) => Promise<Uint8Array>,
  ) {
    this.runner = new ReferenceRunner({ timeoutMs: REFERENCE_TIMEOUT_MS, ...options });
  }

  get maxWorkUnits(): bigint | undefined {
    return this.runner.maxWorkUnits;
  }

  /** The stored artifact of an inference or train spec's model (null: matmul, or not stored). */
  async artifactOf(spec: JobSpec): Promise<ModelArtifact | null> {
    if (spec.kind === 'matmul') return null;
    const hash = spec.model.hash;
    const hit = this.cache.get(hash);
    if (hit) {
      this.cache.delete(hash); // most recently used last
      this.cache.set(hash, hit);
      return hit;
    }
    const row = await this.artifacts.findWhole(hash);
    if (!row) return null;
    const artifact: ModelArtifact = {
      format: row.format as 'layers' | 'graph',
      modelJson: row.modelJson as Record<string, unknown>,
      weights: row.weights,
    };
    if (artifact.weights.byteLength <= REFERENCE_ARTIFACT_CACHE_BYTES / 4) {
      this.cache.set(hash, artifact);
      this.cachedBytes += artifact.weights.byteLength;
      for (const [key, old] of this.cache) {
        if (this.cachedBytes <= REFERENCE_ARTIFACT_CACHE_BYTES) break;
        this.cache.delete(key);
        this.cachedBytes -= old.weights.byteLength;
      }
    }
    return artifact;
  }

  /**
   * Computes `spec`'s reference off the event loop; `low` priority waits behind tie-breaks. With
   * `trainLossOf` (train specs) it evaluates those weight sets' training loss instead (`losses`).
   */
  async compute(
    spec: JobSpec,
    priority: 'high' | 'low' = 'high',
    trainLossOf?: readonly (readonly TensorWire[] | null)[],
  ): Promise<ReferenceOutcome> {
    try {
      const inlined = await this.inlineRefs(spec);
      if (!inlined.ok) return inlined;
      spec = inlined.spec;
      const model = spec.kind === 'matmul' ? undefined : await this.artifactOf(spec);
      if (spec.kind !== 'matmul' && !model) {
        return { ok: false, code: 'NO_ARTIFACT', reason: `the model ${spec.model.hash} is not stored here` };
      }
      const run = await this.runner.compute(spec, {
        model: model ?? undefined,
        priority,
        ...(trainLossOf ? { trainLossOf } : {}),
      });
      return { ok: true, ...run };
    } catch (err) {
      if (err instanceof ReferenceRunError) return { ok: false, code: err.code, reason: err.message };
      return {
        ok: false,
        code: 'EXECUTION_FAILED',
        reason: err instanceof Error ? err.message : String(err),
      };
    }
  }

  /**
   * The training loss a train job reaches with each weight set in `candidates` (`null`: the
   * artifact's untrained weights), computed off the event loop like a reference.
   */
  async trainLosses(
    spec: JobSpec,
    candidates: readonly (readonly TensorWire[] | null)[],
  ): Promise<{ ok: true; losses: number[] } | { ok: false; code: ReferenceFailureCode; reason: string }> {
    if (spec.kind !== 'train') return { ok: false, code: 'BAD_INPUT', reason: `a ${spec.kind} job` };
    const outcome = await this.compute(spec, 'high', candidates);
    return outcome.ok ? { ok: true, losses: outcome.losses ?? [] } : outcome;
  }

  /**
   * `spec` with its inputs by ref read from the tensor store as inline tensors, for the reference
   * worker. An input over the inline cap (`MAX_TENSOR_BYTES`) is not recomputed here (such jobs are
   * over the reference budget anyway): a `BAD_INPUT` failure, as for any input the reference refuses.
   */
  private async inlineRefs(
    spec: JobSpec,
  ): Promise<{ ok: true; spec: JobSpec } | { ok: false; code: ReferenceFailureCode; reason: string }> {
    if (!spec.inputs.some(isTensorRef)) return { ok: true, spec };
    const read = this.tensorBytes;
    const tooLarge = spec.inputs.find(
      (t) => isTensorRef(t) && refTensorByteLength(t.dtype, t.shape) > MAX_TENSOR_BYTES,
    );
    if (!read || tooLarge) {
      return {
        ok: false,
        code: 'BAD_INPUT',
        reason: tooLarge
          ? `input ${tooLarge.name} by ref is over ${MAX_TENSOR_BYTES} bytes: not recomputed here`
          : 'inputs by ref cannot be read here',
      };
    }
    const inputs = await Promise.all(
      spec.inputs.map(async (t): Promise<TensorWire> => {
        if (!isTensorRef(t)) return t;
        const bytes = await read(t.sha256);
        const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
        return { name: t.name, dtype: t.dtype, shape: [...t.shape], data };
      }),
    );
    return { ok: true, spec: { ...spec, inputs } };
  }

  stats(): ReturnType<ReferenceRunner['stats']> {
    return this.runner.stats();
  }

  close(): Promise<void> {
    return this.runner.close();
  }
}
