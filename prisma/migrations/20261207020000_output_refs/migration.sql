-- AlterTable
ALTER TABLE "Tensor" ADD COLUMN     "jobId" UUID;

-- CreateTable
CREATE TABLE "OutputUpload" (
    "peerId" TEXT NOT NULL,
    "sha256" TEXT NOT NULL,
    "storedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "OutputUpload_pkey" PRIMARY KEY ("peerId","sha256")
);

-- CreateIndex
CREATE INDEX "OutputUpload_storedAt_idx" ON "OutputUpload"("storedAt");

-- CreateIndex
CREATE INDEX "Tensor_jobId_idx" ON "Tensor"("jobId");

-- AddForeignKey
ALTER TABLE "Tensor" ADD CONSTRAINT "Tensor_jobId_fkey" FOREIGN KEY ("jobId") REFERENCES "Job"("id") ON DELETE CASCADE ON UPDATE CASCADE;
