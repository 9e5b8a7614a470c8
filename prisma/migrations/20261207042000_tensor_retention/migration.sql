-- AlterTable
ALTER TABLE "Tensor" ADD COLUMN     "lastUsedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;

-- Existing rows: last used when last written (an upload, or its job's outputs given to the account).
UPDATE "Tensor" SET "lastUsedAt" = "updatedAt";

-- CreateIndex
CREATE INDEX "Tensor_lastUsedAt_idx" ON "Tensor"("lastUsedAt");
