// Speed bands: what the index's lists bound prices by, and what a job's required speed is sorted into.

/** Speed bands (factor 2 each) for the per-chunk price-by-speed bounds. */
export const SPEED_BANDS = 20;

/** Band of a speed: floor(log2(gflops)), clamped to 0..SPEED_BANDS-1; monotonic in gflops. */
export function speedBand(gflops: number): number {
  if (!(gflops >= 2)) return 0;
  if (gflops === Number.POSITIVE_INFINITY) return SPEED_BANDS - 1;
  return Math.min(SPEED_BANDS - 1, Math.floor(Math.log2(gflops)));
}
