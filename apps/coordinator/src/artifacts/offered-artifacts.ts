/**
 * Which provider may fetch which model over the artifact protocol from this worker: a provider that
 * holds an open offer (sent by this worker and not yet settled: offered, accepted or running) for a
 * job that uses the model. Kept in memory per worker process, which is enough: an agent fetches the
 * model from the peer that sent it the offer (the offer stream's remote peer), i.e. this worker's
 * libp2p node, and a worker that restarts loses its offer streams along with its grants.
 */
export class OfferedArtifacts {
  /** Open offers by `peerId` and artifact hash. */
  private readonly open = new Map<string, number>();

  /** Records an offer of a job using `hash` to `peerId`; the returned function ends it (once). */
  grant(peerId: string, hash: string): () => void {
    const key = grantKey(peerId, hash);
    this.open.set(key, (this.open.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(key) ?? 0) - 1;
      if (left > 0) this.open.set(key, left);
      else this.open.delete(key);
    };
  }

  /** Whether `peerId` holds an open offer of a job that uses `hash`. */
  allows(peerId: string, hash: string): boolean {
    return this.open.has(grantKey(peerId, hash));
  }

  /** Distinct (peer, artifact) pairs with an open offer. */
  get size(): number {
    return this.open.size;
  }
}

function grantKey(peerId: string, hash: string): string {
  return `${peerId}/${hash}`;
}
