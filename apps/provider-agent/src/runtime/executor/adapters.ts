// One executor per WebGPU adapter. dawn.node opens the first adapter whose device name contains its
// `adapter=` flag, so executors can be spread over adapters Dawn tells apart by name (an RTX 4090 and
// an RTX 3090; a discrete GPU and an integrated one) but not over identical ones (8× H100 list eight
// adapters of one name: they share one executor, as before; one agent per GPU reaches the others, see
// README "Run a provider agent").
import {
  isSoftwareAdapter,
  nativeDawnBackend,
  type DawnAdapterListing,
  type WebgpuAdapterInfo,
} from '@gpumesh/compute';

/**
 * The adapter names to give the executors, one executor each: the hardware adapters Dawn lists on the
 * backend of the adapter it chose, told apart by name. Empty (one executor, Dawn's own choice) when
 * there is at most one such name, or when the chosen adapter is a software one.
 */
export function planWebgpuAdapters(
  listed: readonly DawnAdapterListing[],
  chosen: WebgpuAdapterInfo | undefined,
  platform: NodeJS.Platform = process.platform,
): string[] {
  if (chosen === undefined || chosen.software) return [];
  const backend = chosen.dawnBackend === 'default' ? nativeDawnBackend(platform) : 'opengles';
  const names: string[] = [];
  for (const a of listed) {
    if (a.backend.toLowerCase() !== backend) continue;
    const blank = { vendor: '', architecture: '', description: '' };
    if (isSoftwareAdapter({ ...blank, device: a.name })) continue;
    if (!names.includes(a.name)) names.push(a.name);
  }
  // A name that contains another would also select the other's adapter first: keep them apart.
  const distinct = names.filter((n) => !names.some((other) => other !== n && other.includes(n)));
  return distinct.length > 1 ? distinct : [];
}

/** The adapter name of executor `slot` (round robin over `names`; undefined: Dawn's own choice). */
export function adapterForSlot(names: readonly string[], slot: number): string | undefined {
  return names.length === 0 ? undefined : names[slot % names.length];
}

/**
 * Keeps the names that really open an adapter, each a different one: `open` asks Dawn for the adapter
 * by name (its list and its device names may be spelt differently) and answers what it opened, or null.
 */
export async function confirmWebgpuAdapters(
  names: readonly string[],
  open: (name: string) => Promise<WebgpuAdapterInfo | null>,
): Promise<string[]> {
  const kept: string[] = [];
  const seen = new Set<string>();
  for (const name of names) {
    const info = await open(name);
    if (info === null || info.software) continue;
    const key = `${info.dawnBackend}|${info.vendor}|${info.device}|${info.description}`;
    if (seen.has(key)) continue;
    seen.add(key);
    kept.push(name);
  }
  return kept.length > 1 ? kept : [];
}
