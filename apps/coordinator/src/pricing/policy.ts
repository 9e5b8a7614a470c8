import { DomainError } from '../common/domain-error.js';
import { VerificationPolicySchema, type VerificationPolicy } from '../settings/settings.js';

/** Where a job's policy came from. */
export type PolicySource = 'request' | 'spec' | 'account' | 'platform';

/** What is stored in Job.verification: the policy a job runs under and what it adds to the cost. */
export interface JobVerification extends VerificationPolicy {
  source: PolicySource;
  /** Base units of the platform fee that fund this job's share of canaries. */
  canaryFee: string;
  /**
   * A canary's providers to place it on when they can all take it: those that agreed on the real
   * job it mirrors (see CanaryService.mirror). Never sent to providers; ignored by placement
   * otherwise, and waited for at most PREFERRED_PEERS_WAIT_MS when they only lack a free slot.
   */
  preferPeers?: string[];
  /**
   * The job runs on `preferPeers` or nowhere (a capacity probe measures one provider: run elsewhere
   * it would measure, and pay, the wrong one). It waits for them until its deadline.
   */
  pinPeers?: true;
}

/** How a delivered result was checked (docs/verification.md "Trust tiers"). */
export type VerificationMethod = 'redundant' | 'reference' | 'spot-check' | 'none';

/** What a completed job's result went through, kept with the result (Job.result.verification). */
export interface VerificationOutcome {
  method: VerificationMethod;
  /** A check of this very result passed before it was delivered. */
  verified: boolean;
  /** The provider of another operator whose run agreed (method redundant on a single-copy job). */
  checkedBy?: string;
  /** The tier of the provider whose result was delivered when it was checked. */
  tier?: 'probation' | 'trusted';
  /** A later check found the delivered result wrong and replaced it (event job.corrected). */
  corrected?: boolean;
}

/** How long after its creation a job waits for a free slot on its preferred providers (preferPeers). */
export const PREFERRED_PEERS_WAIT_MS = 2_000;

function parsePolicy(raw: unknown, where: string): VerificationPolicy {
  const parsed = VerificationPolicySchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const path = issue.path.length > 0 ? `${where}.${issue.path.join('.')}` : where;
    throw new DomainError('VALIDATION_FAILED', `${path}: ${issue.message}`);
  }
  return parsed.data;
}

function rawCanaryRate(raw: unknown): number | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const rate = (raw as { canaryRate?: unknown }).canaryRate;
  return typeof rate === 'number' ? rate : undefined;
}

/** Parses an account default as stored (null or invalid → none). */
export function storedPolicy(raw: unknown): VerificationPolicy | null {
  if (raw === null || raw === undefined) return null;
  const parsed = VerificationPolicySchema.safeParse(raw);
  return parsed.success ? parsed.data : null;
}

/**
 * The policy a job runs under: the request's `verification` object, else the spec's legacy
 * `redundancy` (≥ 2 means redundant(k); 1 is the spec default and names no policy), else the
 * account's default, else the platform's. A request or spec that does not name a canary rate takes
 * the account's (else the platform's).
 */
export function resolvePolicy(input: {
  requested: unknown;
  specRedundancy: number | undefined;
  account: VerificationPolicy | null;
  platform: VerificationPolicy;
}): { policy: VerificationPolicy; source: PolicySource } {
  const inherited = input.account ?? input.platform;
  if (input.requested !== undefined) {
    const policy = parsePolicy(input.requested, 'verification');
    if (
      input.specRedundancy !== undefined &&
      input.specRedundancy > 1 &&
      (policy.mode !== 'redundant' || policy.k !== input.specRedundancy)
    ) {
      throw new DomainError(
        'VALIDATION_FAILED',
        `redundancy: ${input.specRedundancy} contradicts verification ${policy.mode}${policy.mode === 'redundant' ? `(k=${policy.k})` : ''}; give one of them`,
      );
    }
    const canaryRate = rawCanaryRate(input.requested) ?? inherited.canaryRate;
    return { policy: { ...policy, canaryRate }, source: 'request' };
  }
  if (input.specRedundancy !== undefined && input.specRedundancy > 1) {
    return {
      policy: { mode: 'redundant', k: input.specRedundancy, canaryRate: inherited.canaryRate },
      source: 'spec',
    };
  }
  if (input.account) return { policy: input.account, source: 'account' };
  return { policy: input.platform, source: 'platform' };
}

/** Reads Job.verification (absent on jobs stored before policies existed: redundancy alone). */
export function jobVerification(job: { verification: unknown; redundancy: number }): JobVerification {
  const v = job.verification as Partial<JobVerification> | null;
  if (v && (v.mode === 'none' || v.mode === 'redundant')) {
    const prefer = v.preferPeers;
    return {
      mode: v.mode,
      k: v.k ?? job.redundancy,
      canaryRate: v.canaryRate ?? 0,
      source: v.source ?? 'platform',
      canaryFee: v.canaryFee ?? '0',
      ...(v.verified === true ? { verified: true as const } : {}),
      ...(Array.isArray(prefer) && prefer.every((p) => typeof p === 'string') ? { preferPeers: prefer } : {}),
      ...(v.pinPeers === true ? { pinPeers: true as const } : {}),
    };
  }
  return {
    mode: job.redundancy > 1 ? 'redundant' : 'none',
    k: job.redundancy,
    canaryRate: 0,
    source: 'spec',
    canaryFee: '0',
  };
}

/** How a job's result was verified (null until it completed), from Job.result.verification. */
export function verificationOutcome(job: { result: unknown }): VerificationOutcome | null {
  const v = (job.result as { verification?: Partial<VerificationOutcome> } | null)?.verification;
  if (!v || typeof v.method !== 'string') return null;
  return {
    method: v.method,
    verified: v.verified === true,
    ...(typeof v.checkedBy === 'string' ? { checkedBy: v.checkedBy } : {}),
    ...(v.tier === 'probation' || v.tier === 'trusted' ? { tier: v.tier } : {}),
    ...(v.corrected === true ? { corrected: true } : {}),
  };
}
