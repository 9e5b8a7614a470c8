import { mkdir, open, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

import type { JournaledTx, TxJournal } from './journaled-tx.js';

/**
 * A journal of one JSON file per key in `dir`, written with write-fsync-rename (for tools that run
 * without the coordinator's database).
 */
export class FileTxJournal implements TxJournal {
  constructor(private readonly dir: string) {}

  async get(key: string): Promise<JournaledTx | null> {
    try {
      return JSON.parse(await readFile(this.path(key), 'utf8')) as JournaledTx;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  async put(tx: JournaledTx): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const tmp = `${this.path(tx.key)}.tmp`;
    await writeFile(tmp, `${JSON.stringify(tx, null, 2)}\n`);
    const handle = await open(tmp, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, this.path(tx.key));
  }

  private path(key: string): string {
    return join(this.dir, `${encodeURIComponent(key)}.json`);
  }
}
