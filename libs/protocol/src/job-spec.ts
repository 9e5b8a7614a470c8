import { z } from 'zod';

import { BackendSchema } from './backend.js';
import {
  DEFAULT_DEADLINE_SECONDS,
  DEFAULT_REDUNDANCY,
  MAX_DEADLINE_SECONDS,
  MAX_INPUT_BYTES_TOTAL,
  MAX_INPUT_TENSORS,
  MAX_REDUNDANCY,
  MAX_TRAIN_EPOCHS,
  MIN_DEADLINE_SECONDS,
  MIN_REDUNDANCY,
  MIN_TRAIN_EPOCHS,
} from './constants.js';
import {
  AmountSchema,
  IdStringSchema,
  NonNegativeIntSchema,
  PositiveIntSchema,
  ProtocolVersionSchema,
  Sha256HexSchema,
} from './primitives.js';
import { TensorNameSchema, TensorWireSchema, tensorByteLength, type TensorWire } from './tensor.js';
import { TensorRefSchema, isTensorRef, type TensorRef } from './tensor-ref.js';
import { parseWith, safeParseWith, type SafeParseResult } from './validation.js';

export const JOB_KINDS = ['matmul', 'inference', 'train'] as const;
export type JobKind = (typeof JOB_KINDS)[number];

export const MODEL_FORMATS = ['layers', 'graph'] as const;
export type ModelFormat = (typeof MODEL_FORMATS)[number];

export const OPTIMIZERS = ['sgd', 'adam'] as const;
export const LOSSES = ['meanSquaredError', 'categoricalCrossentropy', 'binaryCrossentropy'] as const;

/** A job input: a tensor inline (base64 `data`) or named by ref (fetched by the agent). */
export const JobInputSchema = z.union([TensorWireSchema, TensorRefSchema]);
export type JobInput = TensorWire | TensorRef;

/**
 * Named input tensors: unique names, at most `MAX_INPUT_TENSORS`, inline ones at most
 * `MAX_INPUT_BYTES_TOTAL` in all (inputs by ref are bounded one by one by `MAX_REF_TENSOR_BYTES`).
 */
export const TensorListSchema = z
  .array(JobInputSchema, { error: 'expected array of tensors' })
  .min(1, { error: 'expected at least one tensor' })
  .max(MAX_INPUT_TENSORS, { error: `expected at most ${MAX_INPUT_TENSORS} tensors` })
  .superRefine((tensors, ctx) => {
    const seen = new Set<string>();
    let total = 0;
    tensors.forEach((t, i) => {
      if (seen.has(t.name)) {
        ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate tensor name "${t.name}"` });
      }
      seen.add(t.name);
      if (isTensorRef(t)) return;
      const bytes = tensorByteLength(t.dtype, t.shape);
      if (bytes > 0) total += bytes;
    });
    if (total > MAX_INPUT_BYTES_TOTAL) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: `inputs total ${total} bytes; max is ${MAX_INPUT_BYTES_TOTAL} (MAX_INPUT_BYTES_TOTAL)`,
        params: { code: 'TENSOR_TOO_LARGE' },
      });
    }
  });

export const ModelRefSchema = z.strictObject(
  {
    hash: Sha256HexSchema,
    format: z.enum(MODEL_FORMATS, { error: `expected one of ${MODEL_FORMATS.join(', ')}` }),
  },
  {
    error: (iss) =>
      iss.input === undefined
        ? 'model is required for inference and train jobs'
        : 'expected { hash, format }',
  },
);
export type ModelRef = z.output<typeof ModelRefSchema>;

export const JobRequirementsSchema = z.strictObject(
  {
    minVramMiB: NonNegativeIntSchema.optional(),
    gpuModels: z
      .array(IdStringSchema, { error: 'expected array of GPU model names' })
      .max(32, { error: 'expected at most 32 GPU models' })
      .optional(),
    backends: z
      .array(BackendSchema, { error: 'expected array of backends' })
      .min(1, { error: 'expected at least one backend' })
      .optional(),
  },
  { error: 'expected requirements object' },
);
export type JobRequirements = z.output<typeof JobRequirementsSchema>;

const noModel = z.undefined({ error: 'model is not allowed for matmul jobs' }).optional();

const commonFields = {
  version: ProtocolVersionSchema,
  inputs: TensorListSchema,
  requirements: JobRequirementsSchema.default({}),
  maxPricePerUnit: AmountSchema,
  redundancy: z
    .number({ error: 'expected integer' })
    .int({ error: 'expected integer' })
    .min(MIN_REDUNDANCY, { error: `expected ${MIN_REDUNDANCY}..${MAX_REDUNDANCY}` })
    .max(MAX_REDUNDANCY, { error: `expected ${MIN_REDUNDANCY}..${MAX_REDUNDANCY}` })
    .default(DEFAULT_REDUNDANCY),
  deadlineSeconds: z
    .number({ error: 'expected integer seconds' })
    .int({ error: 'expected integer seconds' })
    .min(MIN_DEADLINE_SECONDS, { error: `expected ${MIN_DEADLINE_SECONDS}..${MAX_DEADLINE_SECONDS} seconds` })
    .max(MAX_DEADLINE_SECONDS, { error: `expected ${MIN_DEADLINE_SECONDS}..${MAX_DEADLINE_SECONDS} seconds` })
    .default(DEFAULT_DEADLINE_SECONDS),
};

export const MatmulParamsSchema = z.strictObject(
  {
    transposeA: z.boolean({ error: 'expected boolean' }).optional(),
    transposeB: z.boolean({ error: 'expected boolean' }).optional(),
  },
  { error: 'expected matmul params object' },
);

export const InferenceParamsSchema = z.strictObject(
  { batchSize: PositiveIntSchema.optional() },
  { error: 'expected inference params object' },
);

export const TrainParamsSchema = z.strictObject(
  {
    epochs: z
      .number({ error: 'expected integer' })
      .int({ error: 'expected integer' })
      .min(MIN_TRAIN_EPOCHS, { error: `expected ${MIN_TRAIN_EPOCHS}..${MAX_TRAIN_EPOCHS}` })
      .max(MAX_TRAIN_EPOCHS, { error: `expected ${MIN_TRAIN_EPOCHS}..${MAX_TRAIN_EPOCHS}` }),
    batchSize: PositiveIntSchema,
    learningRate: z
      .number({ error: 'expected number' })
      .positive({ error: 'expected finite number > 0' })
      .max(1000, { error: 'expected learning rate <= 1000' }),
    optimizer: z.enum(OPTIMIZERS, { error: `expected one of ${OPTIMIZERS.join(', ')}` }),
    loss: z.enum(LOSSES, { error: `expected one of ${LOSSES.join(', ')}` }),
  },
  { error: 'expected train params object' },
);

export const MatmulJobSpecSchema = z.strictObject({
  kind: z.literal('matmul'),
  ...commonFields,
  model: noModel,
  params: MatmulParamsSchema.default({}),
});

export const InferenceJobSpecSchema = z.strictObject({
  kind: z.literal('inference'),
  ...commonFields,
  model: ModelRefSchema,
  params: InferenceParamsSchema.default({}),
  outputs: z
    .array(TensorNameSchema, { error: 'expected array of output names' })
    .max(64, { error: 'expected at most 64 outputs' })
    .refine((names) => new Set(names).size === names.length, { error: 'expected unique output names' })
    .optional(),
});

export const TrainJobSpecSchema = z.strictObject({
  kind: z.literal('train'),
  ...commonFields,
  model: ModelRefSchema,
  params: TrainParamsSchema,
});

type IssueSink = { addIssue(issue: { code: 'custom'; path: PropertyKey[]; message: string }): void };

function inputIndex(inputs: readonly JobInput[], name: string): number {
  return inputs.findIndex((t) => t.name === name);
}

function checkMatmulInputs(spec: z.output<typeof MatmulJobSpecSchema>, ctx: IssueSink): void {
  const ia = inputIndex(spec.inputs, 'a');
  const ib = inputIndex(spec.inputs, 'b');
  if (ia < 0)
    ctx.addIssue({ code: 'custom', path: ['inputs'], message: 'matmul requires an input named "a"' });
  if (ib < 0)
    ctx.addIssue({ code: 'custom', path: ['inputs'], message: 'matmul requires an input named "b"' });
  spec.inputs.forEach((t, i) => {
    if (t.name !== 'a' && t.name !== 'b') {
      ctx.addIssue({
        code: 'custom',
        path: ['inputs', i, 'name'],
        message: 'matmul takes only inputs "a" and "b"',
      });
    }
  });
  if (ia < 0 || ib < 0) return;
  const a = spec.inputs[ia];
  const b = spec.inputs[ib];
  let ok = true;
  for (const [t, i] of [
    [a, ia],
    [b, ib],
  ] as const) {
    if (t.shape.length !== 2) {
      ok = false;
      ctx.addIssue({ code: 'custom', path: ['inputs', i, 'shape'], message: 'matmul input must be 2-D' });
    }
    if (t.dtype === 'bool') {
      ok = false;
      ctx.addIssue({
        code: 'custom',
        path: ['inputs', i, 'dtype'],
        message: 'matmul input must be float32 or int32',
      });
    }
  }
  if (ok && a.dtype !== b.dtype) {
    ctx.addIssue({
      code: 'custom',
      path: ['inputs', ib, 'dtype'],
      message: `expected ${a.dtype} like input "a"`,
    });
  }
  if (!ok) return;
  const dims = matmulDims(a.shape, b.shape, spec.params.transposeA, spec.params.transposeB);
  if (dims.kA !== dims.kB) {
    ctx.addIssue({
      code: 'custom',
      path: ['inputs', ib, 'shape'],
      message: `inner dimensions differ: a gives ${dims.kA}, b gives ${dims.kB}`,
    });
  }
}

/** m, n and the inner dimension as seen from each operand of a (possibly transposed) matmul. */
export function matmulDims(
  aShape: readonly number[],
  bShape: readonly number[],
  transposeA = false,
  transposeB = false,
): { m: number; n: number; kA: number; kB: number } {
  const [a0, a1] = aShape;
  const [b0, b1] = bShape;
  return {
    m: transposeA ? a1 : a0,
    kA: transposeA ? a0 : a1,
    kB: transposeB ? b1 : b0,
    n: transposeB ? b0 : b1,
  };
}

function checkTrainInputs(spec: z.output<typeof TrainJobSpecSchema>, ctx: IssueSink): void {
  const ix = inputIndex(spec.inputs, 'x');
  const iy = inputIndex(spec.inputs, 'y');
  if (ix < 0)
    ctx.addIssue({ code: 'custom', path: ['inputs'], message: 'train requires an input named "x"' });
  if (iy < 0)
    ctx.addIssue({ code: 'custom', path: ['inputs'], message: 'train requires an input named "y"' });
  if (ix < 0 || iy < 0) return;
  const x = spec.inputs[ix];
  const y = spec.inputs[iy];
  if (x.shape.length === 0 || y.shape.length === 0 || x.shape[0] !== y.shape[0]) {
    ctx.addIssue({
      code: 'custom',
      path: ['inputs', iy, 'shape'],
      message: `x and y must have the same number of samples (first dimension)`,
    });
  }
}

/** A job as submitted: what to compute, on what, under which price and verification policy. */
export const JobSpecSchema = z
  .discriminatedUnion('kind', [MatmulJobSpecSchema, InferenceJobSpecSchema, TrainJobSpecSchema], {
    error: `expected kind ${JOB_KINDS.join(' | ')}`,
  })
  .superRefine((spec, ctx) => {
    if (spec.kind === 'matmul') checkMatmulInputs(spec, ctx);
    else if (spec.kind === 'train') checkTrainInputs(spec, ctx);
  });

export type JobSpec = z.output<typeof JobSpecSchema>;
/** What a caller may pass in (defaults not yet applied). */
export type JobSpecInput = z.input<typeof JobSpecSchema>;
export type MatmulJobSpec = Extract<JobSpec, { kind: 'matmul' }>;
export type InferenceJobSpec = Extract<JobSpec, { kind: 'inference' }>;
export type TrainJobSpec = Extract<JobSpec, { kind: 'train' }>;

export function parseJobSpec(input: unknown): JobSpec {
  return parseWith('JobSpec', JobSpecSchema, input);
}

export function safeParseJobSpec(input: unknown): SafeParseResult<JobSpec> {
  return safeParseWith('JobSpec', JobSpecSchema, input);
}

/** Number of samples a job runs over: batch size (inference), first dim of `x` (train), 1 (matmul). */
export function jobSampleCount(spec: JobSpec): number {
  switch (spec.kind) {
    case 'matmul':
      return 1;
    case 'inference': {
      if (spec.params.batchSize !== undefined) return spec.params.batchSize;
      const first = spec.inputs[0];
      return first.shape.length > 0 ? first.shape[0] : 1;
    }
    case 'train': {
      const x = spec.inputs.find((t) => t.name === 'x');
      return x && x.shape.length > 0 ? x.shape[0] : 1;
    }
  }
}
