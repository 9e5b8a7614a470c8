import { describe, expect, it } from 'vitest';
import type { Job } from '#prisma';
import { JobsRepository } from './jobs.repository.js';

function job(id: string, dataLength: number): Job {
  return {
    id,
    state: 'QUEUED',
    spec: { inputs: [{ name: 'a', data: 'A'.repeat(dataLength) }] },
  } as unknown as Job;
}

/** JobsRepository's hand-off of just-inserted rows to their first dispatch (no database involved). */
describe('JobsRepository inserted rows', () => {
  const repository = (): JobsRepository => new JobsRepository(null as never, null as never, null as never);

  it('hands a row to its first dispatch once; a second dispatch reads the database', () => {
    const repo = repository();
    repo.rememberInserted(job('j1', 16));
    expect(repo.takeInserted('j1')).toEqual({ job: job('j1', 16), failedProviders: [], lostProviders: [] });
    expect(repo.takeInserted('j1')).toBeNull();
    expect(repo.takeInserted('unknown')).toBeNull();
  });

  it('keeps at most 16 MiB of inputs, dropping the oldest rows first, and never a large one', () => {
    const repo = repository();
    const mib = 1024 * 1024;
    for (let i = 0; i < 20; i++) repo.rememberInserted(job(`j${i}`, mib - 256));
    // 20 rows of 1 MiB each (with the per-row allowance): the 4 oldest gave way.
    expect([0, 1, 2, 3].map((i) => repo.takeInserted(`j${i}`))).toEqual([null, null, null, null]);
    expect(repo.takeInserted('j4')?.job.id).toBe('j4');
    expect(repo.takeInserted('j19')?.job.id).toBe('j19');
    repo.rememberInserted(job('big', 2 * mib));
    expect(repo.takeInserted('big')).toBeNull();
  });
});
