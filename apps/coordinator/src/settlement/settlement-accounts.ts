/** A settle entry's receipt id in the epoch file: the job and the peer it paid. */
export function receiptId(jobId: string, peerId: string): string {
  return `${jobId}:${peerId}`;
}
