-- AlterTable
ALTER TABLE "Provider" ADD COLUMN     "inFlightValue" BIGINT NOT NULL DEFAULT 0,
ADD COLUMN     "stake" BIGINT;
