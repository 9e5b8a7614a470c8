import type { JobAttempt } from '#prisma';

/**
 * What identifies an attempt on the wire: the attempt row's own random uuid as the offer's `jobId`,
 * and attempt number 1. Redundant copies, tie-breaks and retries of one job therefore carry
 * unrelated ids (two colluding providers cannot pair their offers by id, nor tell a tie-break or a
 * retry from a first offer), while a repeated offer of the same attempt carries the same id (the
 * agent's journal answers it without running it twice). The provider's receipt names this id and
 * the coordinator maps it back through the attempt row; evidence bundles list it in `job.offerIds`.
 */
export function offerIdentity(attempt: Pick<JobAttempt, 'id'>): { jobId: string; attempt: number } {
  return { jobId: attempt.id, attempt: 1 };
}
