-- CreateTable
CREATE TABLE "DisprovedClaim" (
    "attemptId" UUID NOT NULL,
    "jobId" UUID NOT NULL,
    "peerId" TEXT NOT NULL,
    "claim" TEXT NOT NULL,
    "delta" DOUBLE PRECISION NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "DisprovedClaim_pkey" PRIMARY KEY ("attemptId")
);

-- CreateIndex
CREATE INDEX "DisprovedClaim_peerId_createdAt_idx" ON "DisprovedClaim"("peerId", "createdAt");

-- AddForeignKey
ALTER TABLE "DisprovedClaim" ADD CONSTRAINT "DisprovedClaim_attemptId_fkey" FOREIGN KEY ("attemptId") REFERENCES "JobAttempt"("id") ON DELETE CASCADE ON UPDATE CASCADE;
