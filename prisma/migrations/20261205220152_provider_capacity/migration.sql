-- AlterTable
ALTER TABLE "Provider" ADD COLUMN     "capacityOverstatedAt" TIMESTAMP(3),
ADD COLUMN     "measuredAt" TIMESTAMP(3),
ADD COLUMN     "measuredGflops" DOUBLE PRECISION,
ADD COLUMN     "probeDueAt" TIMESTAMP(3);
