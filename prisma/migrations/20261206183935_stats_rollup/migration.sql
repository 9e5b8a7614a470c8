-- CreateTable
CREATE TABLE "StatsRollup" (
    "minute" TIMESTAMP(3) NOT NULL,
    "providersOnline" INTEGER NOT NULL,
    "slots" INTEGER NOT NULL,
    "freeSlots" INTEGER NOT NULL,
    "queueDepth" INTEGER NOT NULL,
    "activeJobs" INTEGER NOT NULL,
    "submitted" INTEGER NOT NULL,
    "completed" INTEGER NOT NULL,
    "failed" INTEGER NOT NULL,

    CONSTRAINT "StatsRollup_pkey" PRIMARY KEY ("minute")
);
