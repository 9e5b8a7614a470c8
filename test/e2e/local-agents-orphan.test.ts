import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { TEST_REDIS_URL } from '../helpers/coordinator.js';
import { assertBuilt, COORDINATOR_MAIN, startProcess } from '../helpers/processes.js';

/** Pids of live processes whose command line contains `needle`. */
function pidsOf(needle: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', needle], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

describe('e2e: agents started by --dev', () => {
  let db: TestDatabase | undefined;
  let dir: string | undefined;
  afterAll(async () => {
    if (dir) for (const pid of pidsOf(dir)) process.kill(pid, 'SIGKILL');
    await db?.drop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('stop when the coordinator that started them is killed with SIGKILL', async () => {
    assertBuilt();
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'gpumesh-orphan-'));
    const coordinator = await startProcess(
      COORDINATOR_MAIN,
      ['--dev', '--agents', '1', '--port', '0', '--data-dir', dir],
      {
        ...process.env,
        DATABASE_URL: db.url,
        REDIS_URL: TEST_REDIS_URL,
        QUEUE_PREFIX: `orphan${Date.now()}`,
        SETTLEMENT_ENABLED: 'false',
        LOG_LEVEL: 'warn',
      },
      /gpumesh ready/,
      90_000,
    );
    const agentDir = join(dir, 'agents', '1');
    expect(pidsOf(agentDir)).toHaveLength(1);
    await coordinator.stop('SIGKILL');
    const deadline = Date.now() + 15_000;
    while (pidsOf(agentDir).length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    expect(pidsOf(agentDir)).toEqual([]);
  }, 120_000);
});
