-- Artifacts become private: who may use one is recorded per (hash, account) in "ArtifactOwner"
-- (two accounts may upload the same bytes), with an explicit public flag.

-- CreateTable
CREATE TABLE "ArtifactOwner" (
    "hash" TEXT NOT NULL,
    "accountId" UUID NOT NULL,
    "public" BOOLEAN NOT NULL DEFAULT false,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "ArtifactOwner_pkey" PRIMARY KEY ("hash","accountId")
);

-- Every stored artifact stays usable by the account that uploaded it, and only by it (private).
INSERT INTO "ArtifactOwner" ("hash", "accountId", "public", "createdAt", "updatedAt")
SELECT a."hash", a."accountId", false, a."createdAt", CURRENT_TIMESTAMP
FROM "Artifact" a
WHERE EXISTS (SELECT 1 FROM "Account" acc WHERE acc."id" = a."accountId");

-- AlterTable
ALTER TABLE "Artifact" DROP COLUMN "accountId";

-- CreateIndex
CREATE INDEX "ArtifactOwner_accountId_createdAt_hash_idx" ON "ArtifactOwner"("accountId", "createdAt" DESC, "hash");

-- AddForeignKey
ALTER TABLE "ArtifactOwner" ADD CONSTRAINT "ArtifactOwner_hash_fkey" FOREIGN KEY ("hash") REFERENCES "Artifact"("hash") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "ArtifactOwner" ADD CONSTRAINT "ArtifactOwner_accountId_fkey" FOREIGN KEY ("accountId") REFERENCES "Account"("id") ON DELETE CASCADE ON UPDATE CASCADE;
