-- CreateTable
CREATE TABLE "AdminAuditEntry" (
    "id" BIGSERIAL NOT NULL,
    "at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "actor" TEXT NOT NULL,
    "apiKeyId" UUID,
    "action" TEXT NOT NULL,
    "target" TEXT NOT NULL,
    "reason" TEXT NOT NULL,
    "before" JSONB,
    "after" JSONB,

    CONSTRAINT "AdminAuditEntry_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "AdminAuditEntry_at_idx" ON "AdminAuditEntry"("at");

-- CreateIndex
CREATE INDEX "AdminAuditEntry_action_id_idx" ON "AdminAuditEntry"("action", "id");

-- CreateIndex
CREATE INDEX "AdminAuditEntry_target_id_idx" ON "AdminAuditEntry"("target", "id");

-- CreateIndex
CREATE INDEX "AdminAuditEntry_actor_id_idx" ON "AdminAuditEntry"("actor", "id");

-- Append-only: an entry, once written, is never changed or removed.
CREATE FUNCTION "AdminAuditEntry_append_only"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'the admin audit log is append-only (% refused)', TG_OP;
END $$;
CREATE TRIGGER "AdminAuditEntry_append_only"
  BEFORE UPDATE OR DELETE ON "AdminAuditEntry"
  FOR EACH ROW EXECUTE FUNCTION "AdminAuditEntry_append_only"();
