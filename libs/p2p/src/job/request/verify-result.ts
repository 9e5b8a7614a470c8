// What the coordinator checks of a provider's answer before it believes it.
import {
  hashOutputs,
  hashTensors,
  verifySigned,
  type JobOffer,
  type ResultReceipt,
  type Signed,
  type ResultTensor,
} from '@gpumesh/protocol';

import { JobProtocolError } from '../../errors.js';
import { DATA_FRAME_MAX_BYTES } from '../../frames.js';
import { expectedResultFrameBytes } from '../../result-size.js';
import { describeError } from '../describe-error.js';
import type { SendJobOfferOptions } from '../types.js';

/**
 * Checks a provider's result against the offer it answers: receipt signature by `providerAddress`,
 * job id and attempt, provider peer id, input hash of the offered spec and `hashOutputs(outputs)`.
 * Throws `JobProtocolError('BAD_RECEIPT')`.
 */
export function verifyJobResult(
  offer: JobOffer,
  provider: { readonly peerId: string; readonly address: string },
  outputs: readonly ResultTensor[],
  receipt: unknown,
  now: number = Date.now(),
): Signed<ResultReceipt> {
  let signed: Signed<ResultReceipt>;
  try {
    signed = verifySigned('receipt', receipt, { expectedSigner: provider.address, now });
  } catch (err) {
    throw new JobProtocolError('BAD_RECEIPT', `receipt: ${describeError(err)}`, { cause: err });
  }
  const r = signed.payload;
  const problems: string[] = [];
  if (r.jobId !== offer.jobId) problems.push(`jobId ${r.jobId} != ${offer.jobId}`);
  if (r.attempt !== offer.attempt) problems.push(`attempt ${r.attempt} != ${offer.attempt}`);
  if (r.providerPeerId !== provider.peerId)
    problems.push(`providerPeerId ${r.providerPeerId} != ${provider.peerId}`);
  if (r.inputHash !== hashTensors(offer.spec.inputs))
    problems.push('inputHash does not match the offered inputs');
  if (r.outputHash !== hashOutputs(outputs)) problems.push('outputHash does not match the outputs sent');
  if (problems.length > 0) throw new JobProtocolError('BAD_RECEIPT', `receipt: ${problems.join('; ')}`);
  return signed;
}

/** The result frame cap of one offer: `maxResultBytes` or the spec's expected result, ≤ DATA_FRAME_MAX_BYTES. */
export function resultFrameCap(
  offer: JobOffer,
  options: Pick<SendJobOfferOptions, 'maxResultBytes'>,
): number {
  return Math.min(options.maxResultBytes ?? expectedResultFrameBytes(offer.spec), DATA_FRAME_MAX_BYTES);
}
