// The best k providers from distinct operators seen so far, under the total order of ranksBefore.
import type { ProviderEntry } from './index/provider-entry.js';
import { ranksBefore } from './index/sorted-list.js';

export class TopK {
  readonly entries: ProviderEntry[] = [];
  readonly scores: number[] = [];

  constructor(readonly k: number) {}

  get full(): boolean {
    return this.entries.length >= this.k;
  }

  /** Score a candidate must beat to get in (-Infinity while not full). */
  get threshold(): number {
    return this.entries.length >= this.k ? this.scores[this.entries.length - 1] : Number.NEGATIVE_INFINITY;
  }

  /** Offers an eligible candidate; keeps at most one provider per operator. */
  offer(e: ProviderEntry, score: number): void {
    const entries = this.entries;
    const scores = this.scores;
    let n = entries.length;
    for (let i = 0; i < n; i++) {
      if (entries[i].operatorId === e.operatorId) {
        if (!ranksBefore(score, e.peerId, scores[i], entries[i].peerId)) return;
        entries.splice(i, 1);
        scores.splice(i, 1);
        n--;
        break;
      }
    }
    if (n >= this.k) {
      if (!ranksBefore(score, e.peerId, scores[n - 1], entries[n - 1].peerId)) return;
      entries.pop();
      scores.pop();
      n--;
    }
    let i = n;
    while (i > 0 && ranksBefore(score, e.peerId, scores[i - 1], entries[i - 1].peerId)) i--;
    entries.splice(i, 0, e);
    scores.splice(i, 0, score);
  }

  hasOperator(operatorId: string): boolean {
    for (const e of this.entries) if (e.operatorId === operatorId) return true;
    return false;
  }
}
