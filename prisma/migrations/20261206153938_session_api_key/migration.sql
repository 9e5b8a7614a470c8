-- AlterTable
ALTER TABLE "Session" ADD COLUMN     "apiKeyId" UUID;

-- CreateIndex
CREATE INDEX "Session_apiKeyId_idx" ON "Session"("apiKeyId");
