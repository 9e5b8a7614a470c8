-- CreateTable
CREATE TABLE "Tensor" (
    "sha256" TEXT NOT NULL,
    "accountId" UUID NOT NULL,
    "dtype" TEXT NOT NULL,
    "shape" INTEGER[],
    "bytes" BIGINT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Tensor_pkey" PRIMARY KEY ("accountId","sha256")
);

-- CreateIndex
CREATE INDEX "Tensor_sha256_idx" ON "Tensor"("sha256");

-- AddForeignKey
ALTER TABLE "Tensor" ADD CONSTRAINT "Tensor_accountId_fkey" FOREIGN KEY ("accountId") REFERENCES "Account"("id") ON DELETE CASCADE ON UPDATE CASCADE;
