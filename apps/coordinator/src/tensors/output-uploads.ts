// Who may upload job outputs by ref (the artifact protocol's `put-tensor`): a provider holding an
// open offer may upload as many tensors as the job can return, each at most the job's largest honest
// output. What they uploaded is recorded in PostgreSQL (`OutputUpload`, TensorsRepository), so a
// result may name only tensors this provider uploaded (a provider cannot pass off a tensor it never
// sent, another account's upload say, as its output), after a coordinator restart too.

interface Grant {
  readonly maxBytes: number;
  tensorsLeft: number;
}

/** Uploaded outputs are forgotten after this long unclaimed (a result that never came). */
export const UPLOAD_CLAIM_TTL_MS = 60 * 60 * 1000;

/** Uploads older than UPLOAD_CLAIM_TTL_MS are deleted at most this often (on the next upload). */
export const UPLOAD_PRUNE_EVERY_MS = 60 * 1000;

export class OutputUploads {
  private readonly grants = new Map<string, Set<Grant>>();

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
}
