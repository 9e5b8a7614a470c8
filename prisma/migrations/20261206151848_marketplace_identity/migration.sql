-- CreateTable
CREATE TABLE "Marketplace" (
    "singleton" BOOLEAN NOT NULL DEFAULT true,
    "id" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Marketplace_pkey" PRIMARY KEY ("singleton")
);

-- CreateIndex
CREATE UNIQUE INDEX "Marketplace_id_key" ON "Marketplace"("id");

-- One row, ever: the marketplace's id, random, chosen here so every database (new or upgraded) has one.
ALTER TABLE "Marketplace" ADD CONSTRAINT "Marketplace_single_row" CHECK ("singleton");
INSERT INTO "Marketplace" ("singleton", "id")
VALUES (true, substr(md5(random()::text || clock_timestamp()::text), 1, 12));
