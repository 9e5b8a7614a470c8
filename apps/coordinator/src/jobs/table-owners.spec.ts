import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/** apps/coordinator/src */
const SRC = fileURLToPath(new URL('..', import.meta.url));

/** Prisma's writing methods of a model delegate (`tx.job.update`, `prisma.jobEvent.createMany`, ...). */
const PRISMA_WRITE = '(?:create|update|upsert|delete)\\w*\\s*\\(';

/** Raw SQL writing a table (the quoted name ends there: `"Job"` is not `"JobAttempt"`). */
function sqlWrites(table: string): RegExp {
  return new RegExp(`\\b(?:INSERT\\s+INTO|UPDATE|DELETE\\s+FROM)\\s+"${table}"`, 'gi');
}

function prismaWrites(model: string): RegExp {
  return new RegExp(`\\.${model}\\s*\\.\\s*${PRISMA_WRITE}`, 'g');
}

interface TableOwner {
  tables: readonly string[];
  /** The folder under apps/coordinator/src whose files alone may write them. */
  owner: string;
  writes: readonly RegExp[];
}

/** One writer per table (docs/architecture.md, "Who writes which table"), where it holds. */
const OWNERS: readonly TableOwner[] = [
  {
    tables: ['Job', 'JobEvent', 'JobAttempt'],
    owner: 'jobs',
    writes: [
      prismaWrites('job'),
      prismaWrites('jobEvent'),
      prismaWrites('jobAttempt'),
      sqlWrites('Job'),
      sqlWrites('JobEvent'),
      sqlWrites('JobAttempt'),
    ],
  },
  {
    tables: ['LedgerEntry', 'LedgerBalance'],
    owner: 'ledger',
    writes: [
      prismaWrites('ledgerEntry'),
      prismaWrites('ledgerBalance'),
      sqlWrites('LedgerEntry'),
      sqlWrites('LedgerBalance'),
    ],
  },
  {
    tables: ['AdminAuditEntry'],
    owner: 'admin',
    writes: [prismaWrites('adminAuditEntry'), sqlWrites('AdminAuditEntry')],
  },
  {
    tables: ['Webhook', 'WebhookDelivery'],
    owner: 'events',
    writes: [
      prismaWrites('webhook'),
      prismaWrites('webhookDelivery'),
      sqlWrites('Webhook'),
      sqlWrites('WebhookDelivery'),
    ],
  },
  {
    tables: ['SpendingCap'],
    owner: 'accounts',
    writes: [prismaWrites('spendingCap'), sqlWrites('SpendingCap')],
  },
  {
    tables: ['Tensor', 'OutputUpload'],
    owner: 'tensors',
    writes: [
      prismaWrites('tensor'),
      prismaWrites('outputUpload'),
      sqlWrites('Tensor'),
      sqlWrites('OutputUpload'),
    ],
  },
  {
    tables: ['DisprovedClaim'],
    owner: 'reputation',
    writes: [prismaWrites('disprovedClaim'), sqlWrites('DisprovedClaim')],
  },
];

/** The writes `source` makes with any of `patterns`, as `line: text`. */
function writesIn(source: string, patterns: readonly RegExp[]): string[] {
  const found: { at: number; text: string }[] = [];
  for (const pattern of patterns) {
    for (const m of source.matchAll(new RegExp(pattern.source, pattern.flags))) {
      found.push({ at: m.index, text: m[0].replace(/\s+/g, ' ') });
    }
  }
  return found
    .sort((a, b) => a.at - b.at)
    .map(({ at, text }) => `${source.slice(0, at).split('\n').length}: ${text}`);
}

/** Every source file under `dir` (specs left out), as paths relative to SRC with `/`. */
function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    if (!entry.name.endsWith('.ts') || entry.name.endsWith('.spec.ts')) return [];
    return [relative(SRC, path).split(sep).join('/')];
  });
}

describe('who writes which table', () => {
  const files = sourceFiles(SRC);

  it('scans the coordinator sources', () => {
    expect(files).toContain('jobs/jobs.repository.ts');
    expect(files).toContain('ledger/ledger.repository.ts');
    expect(files.some((f) => f.endsWith('.spec.ts'))).toBe(false);
  });

  for (const { tables, owner, writes } of OWNERS) {
    it(`only ${owner}/ writes ${tables.join(' and ')}`, () => {
      const outside: string[] = [];
      for (const file of files.filter((f) => !f.startsWith(`${owner}/`))) {
        const source = readFileSync(join(SRC, file), 'utf8');
        for (const write of writesIn(source, writes)) outside.push(`${file}:${write}`);
      }
      expect(outside).toEqual([]);
    });

    it(`finds the writes of ${tables.join(' and ')} in ${owner}/ (the patterns still match the code)`, () => {
      const inside = files
        .filter((f) => f.startsWith(`${owner}/`))
        .flatMap((file) => writesIn(readFileSync(join(SRC, file), 'utf8'), writes));
      expect(inside.length).toBeGreaterThan(0);
    });
  }

  it('catches each form of write, and neither reads nor other tables', () => {
    const [jobs, ledger] = OWNERS;
    const source = [
      'await tx.job.update({ where: { id } });',
      'await this.prisma.jobEvent.create({ data });',
      'await tx.job\n  .upsert({});',
      'await tx.job.deleteMany({});',
      'INSERT INTO "Job" (id) VALUES ($1)',
      'update "Job" j SET state = $2',
      'INSERT INTO\n  "JobEvent" ("jobId") SELECT id FROM job',
      'DELETE FROM "Job" WHERE id = $1',
      'await tx.jobAttempt.updateMany({});',
      'UPDATE "JobAttempt" a SET state = $1',
    ].join('\n');
    expect(writesIn(source, jobs.writes)).toEqual([
      '1: .job.update(',
      '2: .jobEvent.create(',
      '3: .job .upsert(',
      '5: .job.deleteMany(',
      '6: INSERT INTO "Job"',
      '7: update "Job"',
      '8: INSERT INTO "JobEvent"',
      '10: DELETE FROM "Job"',
      '11: .jobAttempt.updateMany(',
      '12: UPDATE "JobAttempt"',
    ]);
    const untouched = [
      'await this.prisma.job.findMany({ where });',
      'await this.prisma.jobEvent.findFirst({ where });',
      'await tx.provider.updateMany({});',
      'UPDATE "JobAttemptArchive" a SET state = $1',
      'INSERT INTO "Provider" (id) VALUES ($1)',
      'SELECT * FROM "Job" JOIN "JobEvent" e ON e."jobId" = "Job".id',
      'INSERT INTO "LedgerEntry" (account) VALUES ($1)',
    ].join('\n');
    expect(writesIn(untouched, jobs.writes)).toEqual([]);
    expect(writesIn(untouched, ledger.writes)).toEqual(['7: INSERT INTO "LedgerEntry"']);
    expect(
      writesIn('UPDATE "LedgerBalance" lb SET\nawait tx.ledgerEntry.createMany({})', ledger.writes),
    ).toEqual(['1: UPDATE "LedgerBalance"', '2: .ledgerEntry.createMany(']);
  });
});
