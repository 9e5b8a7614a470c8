// Who may upload job outputs by ref (the artifact protocol's `put-tensor`) and what they uploaded:
// a provider holding an open offer may upload as many tensors as the job can return, each at most
// the job's largest honest output; a result may then name only tensors this provider uploaded, so a
// provider cannot pass off a tensor it never sent (another account's upload, say) as its output.

interface Grant {
  readonly maxBytes: number;
  tensorsLeft: number;
}

/** Uploaded outputs are forgotten after this long unclaimed (a result that never came). */
export const UPLOAD_CLAIM_TTL_MS = 60 * 60 * 1000;

export class OutputUploads {
  private readonly grants = new Map<string, Set<Grant>>();
  /** Uploaded, not yet claimed by a result: `${peerId}/${sha256}` -> when. */
  private readonly uploaded = new Map<string, number>();

  /** Records an open offer to `peerId`; the returned function ends it (once). */
  grant(peerId: string, maxBytes: number, tensors: number): () => void {
    const grant: Grant = { maxBytes, tensorsLeft: tensors };
    let set = this.grants.get(peerId);
    if (!set) this.grants.set(peerId, (set = new Set()));
    set.add(grant);
    return () => {
      const current = this.grants.get(peerId);
      if (!current) return;
      current.delete(grant);
      if (current.size === 0) this.grants.delete(peerId);
    };
  }

  /** Uses one upload of an open offer of `peerId` that allows `bytes`: false when none does. */
  take(peerId: string, bytes: number): boolean {
    for (const grant of this.grants.get(peerId) ?? []) {
      if (grant.tensorsLeft > 0 && bytes <= grant.maxBytes) {
        grant.tensorsLeft -= 1;
        return true;
      }
    }
    return false;
  }

  /** Records that `peerId` uploaded the tensor `sha256` (it is now in the store). */
  stored(peerId: string, sha256: string, now: number = Date.now()): void {
    this.uploaded.set(`${peerId}/${sha256}`, now);
    for (const [key, at] of this.uploaded) {
      if (now - at <= UPLOAD_CLAIM_TTL_MS) break; // insertion order: the rest are newer
      this.uploaded.delete(key);
    }
  }

  /** Whether `peerId` uploaded `sha256` (a result of its may name it; redundant copies may share it). */
  uploadedBy(peerId: string, sha256: string): boolean {
    return this.uploaded.has(`${peerId}/${sha256}`);
  }
}
