// The evidence bundle of a provider caught returning a wrong result: the job, the accused's signed
// receipt and outputs, and the reference it lost against (libs/verification builds and checks it;
// `gpumesh verify-evidence <file>` re-checks it offline).
export {
  buildEvidence,
  canonicalEvidence,
  evidenceHash,
  type EvidenceBundle,
  type ReferenceSource,
} from '@gpumesh/verification';
