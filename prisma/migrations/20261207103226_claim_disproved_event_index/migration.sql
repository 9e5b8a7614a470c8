-- The disproved input-fault claims among the job events, for the sweep that charges those a stopped
-- completion left uncharged (AttemptsRepository.disprovedUncharged).
-- CreateIndex
CREATE INDEX "JobEvent_claim_disproved_idx" ON "JobEvent"("id") WHERE (type = 'attempt.claim_disproved');
