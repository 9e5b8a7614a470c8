import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

import { AttemptJournal, type JournalEntry } from './journal.js';

function entry(i: number): JournalEntry {
  return {
    jobId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    attempt: 1,
    outputs: [],
    receipt: { payload: {} as never, signature: '0x', signer: '0x' },
    earned: String(i),
    at: 1_750_000_000_000 + i,
  };
}

describe('AttemptJournal', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('writes entries recorded together, each resolved once on disk, and reads them back after a restart', async () => {
    dir = await mkdtemp(join(tmpdir(), 'journal-'));
    const path = join(dir, 'journal.jsonl');
    const journal = await AttemptJournal.open(path);
    await Promise.all(Array.from({ length: 50 }, (_, i) => journal.record(entry(i))));
    await journal.record(entry(50));
    expect(journal.reported).toBe(51);
    expect((await readFile(path, 'utf8')).trim().split('\n')).toHaveLength(51);
    await journal.close();
    await expect(journal.record(entry(99))).rejects.toThrow(/closed/);

    // a crash mid-write leaves a torn last line: that attempt was never reported
    await appendFile(path, '{"jobId":"torn');
    const again = await AttemptJournal.open(path);
    expect(again.reported).toBe(51);
    expect(again.earned).toBe(BigInt((50 * 51) / 2));
    expect(again.find(entry(7).jobId, 1)?.earned).toBe('7');
    expect(again.find(entry(7).jobId, 2)).toBeUndefined();
    // an entry recorded after the torn line starts a line of its own and survives the next restart
    await again.record(entry(60));
    await again.close();
    const third = await AttemptJournal.open(path);
    expect(third.find(entry(60).jobId, 1)?.earned).toBe('60');
    expect(third.reported).toBe(52);
    await third.close();
  });
});
