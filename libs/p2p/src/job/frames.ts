import { MAX_INPUT_TENSORS, ResultTensorSchema } from '@gpumesh/protocol';
import { z } from 'zod';

/** Longest free text in a frame (reasons, messages, error codes). */
export const MAX_FRAME_TEXT = 1024;

const Text = z.string().max(MAX_FRAME_TEXT);
const ErrorCode = z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/, { error: 'expected an UPPER_SNAKE error code' });

/**
 * The outline of a signed offer or receipt in a frame. Its content is validated once, where its
 * signature is checked (`verifySigned`, through `createOfferVerifier` and `verifyJobResult`), which
 * also rejects unknown fields: parsing it here too would validate every message twice.
 */
const SignedOutlineSchema = z.looseObject({
  payload: z.unknown(),
  signature: z.string(),
  signer: z.string(),
});

/** Coordinator -> agent: the signed offer, always the first frame. */
export const OfferFrameSchema = z.strictObject({
  type: z.literal('offer'),
  offer: SignedOutlineSchema,
});

/** Coordinator -> agent: stop the attempt (the agent answers with an `error` frame `CANCELLED` or closes). */
export const CancelFrameSchema = z.strictObject({
  type: z.literal('cancel'),
  reason: Text.optional(),
});

export const AcceptFrameSchema = z.strictObject({ type: z.literal('accept') });

export const RejectFrameSchema = z.strictObject({ type: z.literal('reject'), reason: Text });

/** Agent -> coordinator: the answer to an offer. */
export const OfferDecisionFrameSchema = z.discriminatedUnion('type', [AcceptFrameSchema, RejectFrameSchema]);

export const ProgressFrameSchema = z.strictObject({
  type: z.literal('progress'),
  fraction: z.number().min(0).max(1),
  message: Text.optional(),
});

export const ResultFrameSchema = z.strictObject({
  type: z.literal('result'),
  // inline, or by ref once uploaded with the artifact protocol's `put-tensor` (see putTensor)
  outputs: z.array(ResultTensorSchema).max(MAX_INPUT_TENSORS),
  receipt: SignedOutlineSchema,
});

export const ErrorFrameSchema = z.strictObject({
  type: z.literal('error'),
  code: ErrorCode,
  message: Text,
});

/** Agent -> coordinator after `accept`: any number of `progress`, then `result` or `error`. */
export const RunFrameSchema = z.discriminatedUnion('type', [
  ProgressFrameSchema,
  ResultFrameSchema,
  ErrorFrameSchema,
]);

// --- The batch protocol (JOB_BATCH_PROTOCOL_ID): the same messages, addressed by index in the batch.

/** Most offers in one batch stream. */
export const MAX_BATCH_OFFERS = 128;
const BatchIndex = z
  .number()
  .int()
  .min(0)
  .max(MAX_BATCH_OFFERS - 1);

/** Coordinator -> agent: the signed offers, always the first frame. */
export const OffersFrameSchema = z.strictObject({
  type: z.literal('offers'),
  offers: z.array(SignedOutlineSchema).min(1).max(MAX_BATCH_OFFERS),
});

/** Agent -> coordinator: one decision per offer, in the offers' order. */
export const DecisionsFrameSchema = z.strictObject({
  type: z.literal('decisions'),
  decisions: z.array(OfferDecisionFrameSchema).min(1).max(MAX_BATCH_OFFERS),
});

/** Coordinator -> agent: stop one attempt of the batch. */
export const BatchCancelFrameSchema = CancelFrameSchema.extend({ index: BatchIndex });

export const BatchProgressFrameSchema = ProgressFrameSchema.extend({ index: BatchIndex });

/** One finished attempt of a batch: its result or its error. */
export const BatchOutcomeSchema = z.discriminatedUnion('type', [
  ResultFrameSchema.extend({ index: BatchIndex }),
  ErrorFrameSchema.extend({ index: BatchIndex }),
]);

/** Agent -> coordinator: the attempts that finished since the last such frame. */
export const ResultsFrameSchema = z.strictObject({
  type: z.literal('results'),
  results: z.array(BatchOutcomeSchema).min(1).max(MAX_BATCH_OFFERS),
});

/** Agent -> coordinator after `decisions`: progress and results, until every accepted attempt ended. */
export const BatchRunFrameSchema = z.discriminatedUnion('type', [
  BatchProgressFrameSchema,
  ResultsFrameSchema,
]);

/** Only `cancel` may follow the offer from the coordinator. */
export const CoordinatorControlFrameSchema = CancelFrameSchema;

export type OfferFrame = z.output<typeof OfferFrameSchema>;
export type CancelFrame = z.output<typeof CancelFrameSchema>;
export type AcceptFrame = z.output<typeof AcceptFrameSchema>;
export type RejectFrame = z.output<typeof RejectFrameSchema>;
export type ProgressFrame = z.output<typeof ProgressFrameSchema>;
export type ResultFrame = z.output<typeof ResultFrameSchema>;
export type ErrorFrame = z.output<typeof ErrorFrameSchema>;
export type RunFrame = z.output<typeof RunFrameSchema>;
export type BatchOutcome = z.output<typeof BatchOutcomeSchema>;
