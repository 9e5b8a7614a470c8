-- AlterTable
ALTER TABLE "Provider" ADD COLUMN     "inFlightValue" BIGINT NOT NULL DEFAULT 0,
ADD COLUMN     "stake" BIGINT;

-- A provider's operator is its signing (staking) address, not the operatorId it declared.
UPDATE "Provider" SET "operatorId" = lower(address);
