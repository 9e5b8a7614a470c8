import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrismaClient } from '#prisma';
import {
  startEmbeddedPostgres,
  type EmbeddedPostgres,
} from '../../apps/coordinator/src/infra/embedded/embedded-postgres.js';

const prismaFor = (url: string): PrismaClient =>
  new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });

describe('embedded PostgreSQL (PGlite over the wire protocol)', () => {
  let dir: string;
  let dataDir: string;
  let pgl: EmbeddedPostgres | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'gpumesh-pglite-'));
    dataDir = path.join(dir, 'pglite');
  });
  afterAll(async () => {
    await pgl?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('starts, migrates and serves Prisma queries (also in parallel)', async () => {
    pgl = await startEmbeddedPostgres({ dataDir });
    console.info(
      `[timing] PGlite first start ${pgl.timings.startMs} ms, migrations ${pgl.timings.migrateMs} ms`,
    );
    expect(pgl.url).toMatch(/^postgresql:\/\/postgres@127\.0\.0\.1:\d+\/postgres$/);
    expect(pgl.applied.length).toBeGreaterThan(0);

    const prisma = prismaFor(pgl.url);
    try {
      const account = await prisma.account.create({
        data: { address: '0x00000000000000000000000000000000000000aa' },
      });
      const job = await prisma.job.create({
        data: {
          accountId: account.id,
          kind: 'matmul',
          spec: { n: 4 },
          specHash: 'h',
          workUnits: 10n,
          pricePerUnit: 3n,
          cost: 30n,
          deadlineAt: new Date(Date.now() + 3_600_000),
          events: { create: [{ type: 'created', toState: 'QUEUED' }] },
        },
      });
      expect(job.cost).toBe(30n);
      const counts = await Promise.all(Array.from({ length: 24 }, () => prisma.job.count()));
      expect(counts).toEqual(Array.from({ length: 24 }, () => 1));
      await prisma.$transaction([
        prisma.ledgerBalance.create({ data: { account: 'system:mint', balance: -30n } }),
        prisma.ledgerBalance.create({ data: { account: `acct:${account.id}:available`, balance: 30n } }),
      ]);
      await expect(prisma.jobEvent.deleteMany({})).rejects.toThrow(/append-only/);
    } finally {
      await prisma.$disconnect();
    }
  });

  it('restarts on the same data dir with the data kept and nothing to migrate', async () => {
    await pgl?.stop();
    pgl = undefined;
    const restarted = await startEmbeddedPostgres({ dataDir });
    pgl = restarted;
    console.info(
      `[timing] PGlite restart ${restarted.timings.startMs} ms, migrations ${restarted.timings.migrateMs} ms`,
    );
    expect(restarted.applied).toEqual([]);
    const prisma = prismaFor(restarted.url);
    try {
      const job = await prisma.job.findFirstOrThrow({ include: { events: true } });
      expect(job.workUnits).toBe(10n);
      expect(job.events.map((e) => e.type)).toEqual(['created']);
      expect(await prisma.ledgerBalance.count()).toBe(2);
    } finally {
      await prisma.$disconnect();
    }
  });

  it('refuses to open a data dir that is already open', async () => {
    await expect(startEmbeddedPostgres({ dataDir })).rejects.toThrow(/already open/);
  });
});
