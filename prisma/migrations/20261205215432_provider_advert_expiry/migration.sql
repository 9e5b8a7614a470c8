-- AlterTable
ALTER TABLE "Provider" ADD COLUMN     "advertExpiresAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;

-- Existing rows take the expiry of the advert they store (epoch milliseconds).
UPDATE "Provider"
   SET "advertExpiresAt" = to_timestamp(("advert"->>'expiresAt')::double precision / 1000.0) AT TIME ZONE 'UTC'
 WHERE jsonb_typeof("advert"->'expiresAt') = 'number';

-- CreateIndex
CREATE INDEX "Provider_status_advertExpiresAt_idx" ON "Provider"("status", "advertExpiresAt");
