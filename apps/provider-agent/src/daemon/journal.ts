import { writeSync } from 'node:fs';
import { mkdir, open, readFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ResultReceipt, ResultTensor, Signed } from '@gpumesh/protocol';

export interface JournalEntry {
  jobId: string;
  attempt: number;
  /** As reported: outputs by ref were uploaded to the coordinator before. */
  outputs: ResultTensor[];
  receipt: Signed<ResultReceipt>;
  /** The offered price × work units, before the platform fee. */
  earned: string;
  /** What the provider is paid for it once verified: `earned` less the fee signed into the offer. */
  net?: string;
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
  private totalNet = 0n;
  private count = 0;

  /** Held open for appends (O_APPEND): no open and close per entry. */
  private handle: FileHandle | null = null;
  /** Lines waiting for the next write, and the write loop while it runs. */
  private queue: { line: string; resolve: () => void; reject: (err: unknown) => void }[] = [];
  private flushing: Promise<void> | null = null;

  private constructor(private readonly path: string) {}

  static async open(path: string): Promise<AttemptJournal> {
    const journal = new AttemptJournal(path);
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const { entries, text } = await readJournalFile(path);
    for (const entry of entries) journal.remember(entry);
    journal.handle = await open(path, 'a', 0o600);
    // End a torn last line, so the next entry starts a line of its own instead of joining it.
    if (text.length > 0 && !text.endsWith('\n')) await journal.handle.write('\n');
    return journal;
  }

  find(jobId: string, attempt: number): JournalEntry | undefined {
    return this.entries.get(`${jobId}#${attempt}`);
  }

  /**
   * Appends `entry` and resolves once it is written. Entries recorded together (receipts signed in one
   * batch) go out in one write.
   */
  async record(entry: JournalEntry): Promise<void> {
    if (!this.handle) throw new Error(`journal ${this.path} is closed`);
    const line = `${JSON.stringify(entry)}\n`;
    await new Promise<void>((resolve, reject) => {
      this.queue.push({ line, resolve, reject });
      if (this.flushing === null) {
        this.flushing = new Promise<void>((done) => queueMicrotask(() => void this.flush().then(done)));
      }
    });
    this.remember(entry);
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0);
      try {
        if (!this.handle) throw new Error(`journal ${this.path} is closed`);
        // An append of a few kilobytes to the page cache takes microseconds: written here rather
        // than through the thread pool (two thread hand-offs on the way to every result).
        const bytes = Buffer.from(batch.map((b) => b.line).join(''));
        let written = 0;
        while (written < bytes.length) written += writeSync(this.handle.fd, bytes, written);
        for (const b of batch) b.resolve();
      } catch (err) {
        for (const b of batch) b.reject(err);
      }
    }
    this.flushing = null;
  }

  async close(): Promise<void> {
    await this.flushing;
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

  /**
   * Sum of what the reported attempts pay after the fee signed into their offers (an attempt
   * journaled before offers carried a fee counts at its gross).
   */
  get net(): bigint {
    return this.totalNet;
  }

  private remember(entry: JournalEntry): void {
    this.entries.set(`${entry.jobId}#${entry.attempt}`, entry);
    this.count += 1;
    this.totalEarned += BigInt(entry.earned);
    this.totalNet += BigInt(entry.net ?? entry.earned);
    if (this.entries.size > MAX_REMEMBERED) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }
}

/**
 * Every entry of the journal at `path` (none when it does not exist yet), with its text. A torn last
 * line from a crash mid-write is skipped: that attempt was never reported.
 */
export async function readJournalFile(path: string): Promise<{ entries: JournalEntry[]; text: string }> {
  let text = '';
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const entries: JournalEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      entries.push(JSON.parse(line) as JournalEntry);
    } catch {
      // torn line
    }
  }
  return { entries, text };
}
