import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ResultReceipt, Signed, TensorWire } from '#protocol';

export interface JournalEntry {
  jobId: string;
  attempt: number;
  outputs: TensorWire[];
  receipt: Signed<ResultReceipt>;
  earned: string;
  at: number;
}

/** Keeps this many reported attempts in memory (older ones are only on disk). */
const MAX_REMEMBERED = 10_000;

/**
 * Append-only record of every attempt this agent reported (one JSON line each, written before the
 * result is sent). A restarted agent answers a repeated offer of a reported attempt from here and
 * never runs it twice.
 */
export class AttemptJournal {
  private readonly entries = new Map<string, JournalEntry>();
  private totalEarned = 0n;
  private count = 0;

  /** Held open for appends (O_APPEND): one write per entry, not an open and close each time. */
  private handle: FileHandle | null = null;

  private constructor(private readonly path: string) {}

  static async open(path: string): Promise<AttemptJournal> {
    const journal = new AttemptJournal(path);
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        journal.remember(JSON.parse(line) as JournalEntry);
      } catch {
        // A torn last line from a crash mid-write: that attempt was never reported.
      }
    }
    journal.handle = await open(path, 'a', 0o600);
    return journal;
  }

  find(jobId: string, attempt: number): JournalEntry | undefined {
    return this.entries.get(`${jobId}#${attempt}`);
  }

  async record(entry: JournalEntry): Promise<void> {
    if (!this.handle) throw new Error(`journal ${this.path} is closed`);
    await this.handle.write(`${JSON.stringify(entry)}\n`);
    this.remember(entry);
  }

  async close(): Promise<void> {
    const handle = this.handle;
    this.handle = null;
    await handle?.close();
  }

  get reported(): number {
    return this.count;
  }

  /** Sum of the offered price × work units of every reported attempt (paid once verified). */
  get earned(): bigint {
    return this.totalEarned;
  }

  private remember(entry: JournalEntry): void {
    this.entries.set(`${entry.jobId}#${entry.attempt}`, entry);
    this.count += 1;
    this.totalEarned += BigInt(entry.earned);
    if (this.entries.size > MAX_REMEMBERED) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }
}
