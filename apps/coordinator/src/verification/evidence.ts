// The evidence bundle of a provider caught returning a wrong result: the job, the accused's signed
// receipt and outputs, and the reference it lost against. Written against the interface of
// `#verification` (libs/verification, H1a): buildEvidence / canonicalEvidence / evidenceHash. Until
// that library lands this file builds the same shape; then it becomes a re-export.
import { keccak256, toUtf8Bytes } from 'ethers';
import { canonicalJson, type JobSpec, type ResultReceipt, type Signed, type TensorWire } from '#protocol';

export type ReferenceSource = 'providers' | 'coordinator' | 'canary';

export interface EvidenceInput {
  job: { id: string; spec: JobSpec; specHash: string };
  accused: { receipt: Signed<ResultReceipt>; outputs: TensorWire[] };
  reference: { source: ReferenceSource; outputs: TensorWire[]; receipts?: Signed<ResultReceipt>[] };
  artifacts?: Record<string, unknown>;
}

export interface EvidenceBundle extends EvidenceInput {
  version: 1;
  kind: 'gpumesh.evidence';
}

export function buildEvidence(input: EvidenceInput): EvidenceBundle {
  return { version: 1, kind: 'gpumesh.evidence', ...input };
}

/** Canonical JSON text of a bundle (sorted keys): what is stored and hashed. */
export function canonicalEvidence(bundle: EvidenceBundle): string {
  return canonicalJson(bundle);
}

/** 0x keccak256 of the canonical text: the evidence hash a slash cites on-chain. */
export function evidenceHash(bundle: EvidenceBundle): string {
  return keccak256(toUtf8Bytes(canonicalEvidence(bundle)));
}
