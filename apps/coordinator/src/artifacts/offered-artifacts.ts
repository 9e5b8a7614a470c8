/**
 * Fetches of a model one open offer allows. An agent fetches a model once per offer (and keeps it in
 * its cache); the rest covers retries of a transfer that failed. More would let one offer pull a
 * large model over and over.
 */
export const ARTIFACT_FETCHES_PER_OFFER = 3;

interface Grant {
  /** Open offers of jobs using the model. */
  offers: number;
  /** Fetches left across those offers. */
  fetchesLeft: number;
}

/**
 * Which provider may fetch which model over the artifact protocol from this worker: a provider that
 * holds an open offer (sent by this worker and not yet settled: offered, accepted or running) for a
 * job that uses the model, a few times per offer. Kept in memory per worker process, which is
 * enough: an agent fetches the model from the peer that sent it the offer (the offer stream's remote
 * peer), i.e. this worker's libp2p node, and a worker that restarts loses its offer streams along
 * with its grants.
 */
export class OfferedArtifacts {
  /** Open grants by `peerId` and artifact hash. */
  private readonly open = new Map<string, Grant>();

  constructor(private readonly fetchesPerOffer: number = ARTIFACT_FETCHES_PER_OFFER) {}

  /** Records an offer of a job using `hash` to `peerId`; the returned function ends it (once). */
  grant(peerId: string, hash: string): () => void {
    const key = grantKey(peerId, hash);
    const grant = this.open.get(key) ?? { offers: 0, fetchesLeft: 0 };
    grant.offers += 1;
    grant.fetchesLeft += this.fetchesPerOffer;
    this.open.set(key, grant);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const current = this.open.get(key);
      if (!current) return;
      current.offers -= 1;
      current.fetchesLeft = Math.min(current.fetchesLeft, current.offers * this.fetchesPerOffer);
      if (current.offers <= 0) this.open.delete(key);
    };
  }

  /** Whether `peerId` holds an open offer of a job that uses `hash` (without using a fetch). */
  allows(peerId: string, hash: string): boolean {
    return (this.open.get(grantKey(peerId, hash))?.fetchesLeft ?? 0) > 0;
  }

  /** Uses one fetch of `peerId`'s grant for `hash`: false when it has none (or none left). */
  take(peerId: string, hash: string): boolean {
    const grant = this.open.get(grantKey(peerId, hash));
    if (!grant || grant.fetchesLeft <= 0) return false;
    grant.fetchesLeft -= 1;
    return true;
  }

  /** Distinct (peer, artifact) pairs with an open offer. */
  get size(): number {
    return this.open.size;
  }
}

function grantKey(peerId: string, hash: string): string {
  return `${peerId}/${hash}`;
}
