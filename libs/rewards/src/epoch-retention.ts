/** An epoch file a peer holds, as its retention policy sees it. */
export interface HeldEpochFile {
  readonly distributor: string;
  readonly epoch: number;
  /** The file has a leaf of the holder's own address (it may need it to claim or to prove a claim). */
  readonly concernsHolder: boolean;
}

/**
 * Which held epoch files to drop so disk use stays bounded: every file that concerns the holder is
 * kept, and of the others only the newest `keepOthers` (by epoch, ties by distributor), which is
 * what a peer serves to the rest of the network. Returns the files to drop, oldest first.
 */
export function epochFilesToDrop<T extends HeldEpochFile>(files: readonly T[], keepOthers: number): T[] {
  const others = files
    .filter((f) => !f.concernsHolder)
    .sort(
      (a, b) =>
        b.epoch - a.epoch || (a.distributor < b.distributor ? -1 : a.distributor > b.distributor ? 1 : 0),
    );
  return others.slice(Math.max(0, keepOthers)).reverse();
}
