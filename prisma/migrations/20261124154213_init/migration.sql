-- CreateEnum
CREATE TYPE "AccountRole" AS ENUM ('DEVELOPER', 'ADMIN');

-- CreateEnum
CREATE TYPE "JobState" AS ENUM ('QUEUED', 'DISPATCHED', 'RUNNING', 'VERIFYING', 'COMPLETED', 'FAILED', 'CANCELLED', 'EXPIRED');

-- CreateEnum
CREATE TYPE "AttemptState" AS ENUM ('OFFERED', 'ACCEPTED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'LOST');

-- CreateEnum
CREATE TYPE "ProviderStatus" AS ENUM ('ONLINE', 'OFFLINE', 'DRAINING', 'BANNED');

-- CreateEnum
CREATE TYPE "EpochState" AS ENUM ('OPEN', 'CLOSED', 'POSTED', 'FINALIZED');

-- CreateTable
CREATE TABLE "Account" (
    "id" UUID NOT NULL,
    "address" TEXT NOT NULL,
    "role" "AccountRole" NOT NULL DEFAULT 'DEVELOPER',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Account_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AuthNonce" (
    "nonce" TEXT NOT NULL,
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "usedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "AuthNonce_pkey" PRIMARY KEY ("nonce")
);

-- CreateTable
CREATE TABLE "Session" (
    "id" UUID NOT NULL,
    "accountId" UUID NOT NULL,
    "tokenHash" TEXT NOT NULL,
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "revokedAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Session_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "ApiKey" (
    "id" UUID NOT NULL,
    "accountId" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "keyHash" TEXT NOT NULL,
    "role" "AccountRole" NOT NULL DEFAULT 'DEVELOPER',
    "scopes" TEXT[],
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastUsedAt" TIMESTAMP(3),
    "revokedAt" TIMESTAMP(3),

    CONSTRAINT "ApiKey_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Provider" (
    "peerId" TEXT NOT NULL,
    "address" TEXT NOT NULL,
    "operatorId" TEXT NOT NULL,
    "status" "ProviderStatus" NOT NULL DEFAULT 'ONLINE',
    "backend" TEXT NOT NULL,
    "gpus" JSONB NOT NULL,
    "gflops" DOUBLE PRECISION NOT NULL,
    "pricePerUnit" BIGINT NOT NULL,
    "slots" INTEGER NOT NULL,
    "freeSlots" INTEGER NOT NULL,
    "region" TEXT,
    "reputation" DOUBLE PRECISION NOT NULL DEFAULT 0.5,
    "advert" JSONB NOT NULL,
    "advertSeq" BIGINT NOT NULL DEFAULT 0,
    "lastSeenAt" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Provider_pkey" PRIMARY KEY ("peerId")
);

-- CreateTable
CREATE TABLE "Job" (
    "id" UUID NOT NULL,
    "accountId" UUID NOT NULL,
    "kind" TEXT NOT NULL,
    "state" "JobState" NOT NULL DEFAULT 'QUEUED',
    "spec" JSONB NOT NULL,
    "specHash" TEXT NOT NULL,
    "workUnits" BIGINT NOT NULL,
    "pricePerUnit" BIGINT NOT NULL,
    "cost" BIGINT NOT NULL,
    "redundancy" INTEGER NOT NULL DEFAULT 1,
    "priority" INTEGER NOT NULL DEFAULT 0,
    "deadlineAt" TIMESTAMP(3) NOT NULL,
    "idempotencyKey" TEXT,
    "result" JSONB,
    "resultHash" TEXT,
    "error" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "finishedAt" TIMESTAMP(3),

    CONSTRAINT "Job_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "JobAttempt" (
    "id" UUID NOT NULL,
    "jobId" UUID NOT NULL,
    "attempt" INTEGER NOT NULL,
    "providerId" TEXT,
    "state" "AttemptState" NOT NULL DEFAULT 'OFFERED',
    "receipt" JSONB,
    "outputHash" TEXT,
    "error" TEXT,
    "offeredAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "startedAt" TIMESTAMP(3),
    "finishedAt" TIMESTAMP(3),

    CONSTRAINT "JobAttempt_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "JobEvent" (
    "id" BIGSERIAL NOT NULL,
    "jobId" UUID NOT NULL,
    "type" TEXT NOT NULL,
    "fromState" "JobState",
    "toState" "JobState",
    "data" JSONB,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "JobEvent_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Artifact" (
    "hash" TEXT NOT NULL,
    "format" TEXT NOT NULL,
    "sizeBytes" INTEGER NOT NULL,
    "modelJson" JSONB NOT NULL,
    "weights" BYTEA NOT NULL,
    "accountId" UUID NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Artifact_pkey" PRIMARY KEY ("hash")
);

-- CreateTable
CREATE TABLE "LedgerEntry" (
    "id" BIGSERIAL NOT NULL,
    "txId" UUID NOT NULL,
    "account" TEXT NOT NULL,
    "amount" BIGINT NOT NULL,
    "kind" TEXT NOT NULL,
    "jobId" UUID,
    "epochId" INTEGER,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "LedgerEntry_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "LedgerBalance" (
    "account" TEXT NOT NULL,
    "balance" BIGINT NOT NULL DEFAULT 0,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "LedgerBalance_pkey" PRIMARY KEY ("account")
);

-- CreateTable
CREATE TABLE "Epoch" (
    "id" INTEGER NOT NULL,
    "state" "EpochState" NOT NULL DEFAULT 'OPEN',
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "closedAt" TIMESTAMP(3),
    "root" TEXT,
    "fileHash" TEXT,
    "txHash" TEXT,

    CONSTRAINT "Epoch_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Account_address_key" ON "Account"("address");

-- CreateIndex
CREATE UNIQUE INDEX "Session_tokenHash_key" ON "Session"("tokenHash");

-- CreateIndex
CREATE INDEX "Session_accountId_idx" ON "Session"("accountId");

-- CreateIndex
CREATE UNIQUE INDEX "ApiKey_keyHash_key" ON "ApiKey"("keyHash");

-- CreateIndex
CREATE INDEX "ApiKey_accountId_idx" ON "ApiKey"("accountId");

-- CreateIndex
CREATE INDEX "Provider_status_idx" ON "Provider"("status");

-- CreateIndex
CREATE INDEX "Provider_operatorId_idx" ON "Provider"("operatorId");

-- CreateIndex
CREATE INDEX "Job_accountId_createdAt_id_idx" ON "Job"("accountId", "createdAt" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "Job_state_deadlineAt_idx" ON "Job"("state", "deadlineAt");

-- CreateIndex
CREATE UNIQUE INDEX "Job_accountId_idempotencyKey_key" ON "Job"("accountId", "idempotencyKey");

-- CreateIndex
CREATE INDEX "JobAttempt_providerId_idx" ON "JobAttempt"("providerId");

-- CreateIndex
CREATE UNIQUE INDEX "JobAttempt_jobId_attempt_key" ON "JobAttempt"("jobId", "attempt");

-- CreateIndex
CREATE INDEX "JobEvent_jobId_id_idx" ON "JobEvent"("jobId", "id");

-- CreateIndex
CREATE INDEX "LedgerEntry_account_id_idx" ON "LedgerEntry"("account", "id");

-- CreateIndex
CREATE INDEX "LedgerEntry_txId_idx" ON "LedgerEntry"("txId");

-- CreateIndex
CREATE INDEX "LedgerEntry_jobId_idx" ON "LedgerEntry"("jobId");

-- AddForeignKey
ALTER TABLE "Session" ADD CONSTRAINT "Session_accountId_fkey" FOREIGN KEY ("accountId") REFERENCES "Account"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ApiKey" ADD CONSTRAINT "ApiKey_accountId_fkey" FOREIGN KEY ("accountId") REFERENCES "Account"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Job" ADD CONSTRAINT "Job_accountId_fkey" FOREIGN KEY ("accountId") REFERENCES "Account"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "JobAttempt" ADD CONSTRAINT "JobAttempt_jobId_fkey" FOREIGN KEY ("jobId") REFERENCES "Job"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "JobAttempt" ADD CONSTRAINT "JobAttempt_providerId_fkey" FOREIGN KEY ("providerId") REFERENCES "Provider"("peerId") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "JobEvent" ADD CONSTRAINT "JobEvent_jobId_fkey" FOREIGN KEY ("jobId") REFERENCES "Job"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- ---------------------------------------------------------------------------------------------------
-- Hand-written below this line (not generated from schema.prisma; Prisma does not manage triggers or
-- CHECK constraints, and a later `db:migration:new` diff leaves them alone).
-- ---------------------------------------------------------------------------------------------------

-- Append-only tables: JobEvent and LedgerEntry accept INSERT only. UPDATE and DELETE (including a
-- DELETE cascaded from a Job) are rejected; TRUNCATE is not affected (tests use it to reset).
CREATE FUNCTION "gpumesh_reject_append_only_change"() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- SQLSTATE P0001 (raise_exception): Prisma reports the message as is.
    RAISE EXCEPTION 'table "%" is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING HINT = 'Insert a compensating row instead of changing or deleting one.';
END;
$$;

CREATE TRIGGER "JobEvent_append_only"
    BEFORE UPDATE OR DELETE ON "JobEvent"
    FOR EACH ROW EXECUTE FUNCTION "gpumesh_reject_append_only_change"();

CREATE TRIGGER "LedgerEntry_append_only"
    BEFORE UPDATE OR DELETE ON "LedgerEntry"
    FOR EACH ROW EXECUTE FUNCTION "gpumesh_reject_append_only_change"();

-- User accounts (`acct:...`) never go negative; system and provider accounts may.
ALTER TABLE "LedgerBalance" ADD CONSTRAINT "LedgerBalance_acct_nonnegative"
    CHECK ("account" NOT LIKE 'acct:%' OR "balance" >= 0);
