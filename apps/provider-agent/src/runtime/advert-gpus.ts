// The GPUs an advert lists: only those jobs really run on. tensorflow-gpu lists the CUDA devices
// nvidia-smi found; webgpu lists each hardware adapter its executors opened, named as Dawn names it
// (vendor, architecture, device); a software adapter (llvmpipe, lavapipe, SwiftShader, Microsoft Basic
// Render) and every CPU backend list none, so the scheduler treats them as CPU-class. A listed GPU is
// a claim like the advertised speed: the coordinator credits only the speed it measures (capacity
// probes, verified jobs), never the name.
import { isSoftwareAdapter, type WebgpuAdapterInfo } from '@gpumesh/compute';
import {
  GPU_MODEL_PATTERN,
  MAX_GPU_MODEL_LENGTH,
  MAX_GPU_VRAM_MIB,
  type Backend,
  type GpuInfo,
} from '@gpumesh/protocol';

import type { GpuDetection } from './gpu-detect.js';
import type { ListedGpu } from './gpu-list.js';

const MIB = 1024 * 1024;

/** Vendors whose GPUs share the host's memory (Apple silicon): their "VRAM" is the host's RAM. */
const UNIFIED_MEMORY_VENDORS = /^(apple)$/i;

/** Dawn's vendor names (from the PCI vendor id) as the vendor tools spell them. */
const VENDOR_ALIASES: Readonly<Record<string, RegExp>> = {
  nvidia: /nvidia/i,
  amd: /amd|advanced micro devices|ati\b/i,
  intel: /intel/i,
  apple: /apple/i,
};

/** A name the advert schema accepts: allowed characters only, at most MAX_GPU_MODEL_LENGTH. */
function sanitizeModel(name: string): string | null {
  const cleaned = name
    .replace(/[^A-Za-z0-9 ._()[\]+\-/,:@#]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, MAX_GPU_MODEL_LENGTH)
    .replace(/[\s]+$/, '')
    .replace(/^[^A-Za-z0-9]+/, '');
  return cleaned !== '' && GPU_MODEL_PATTERN.test(cleaned) ? cleaned : null;
}

/**
 * The model name of a WebGPU adapter: Dawn's device name ("NVIDIA GeForce RTX 4090", "Apple M2",
 * "AMD Radeon RX 7900 XTX (RADV NAVI31)"), which on Vulkan is the driver's own and equals nvidia-smi's;
 * without one, vendor and architecture ("nvidia lovelace"). Null when Dawn says nothing usable.
 */
export function webgpuModelName(
  info: Pick<WebgpuAdapterInfo, 'vendor' | 'architecture' | 'device'>,
): string | null {
  const device = sanitizeModel(info.device);
  if (device !== null) return device;
  return sanitizeModel([info.vendor, info.architecture].filter((s) => s !== '').join(' '));
}

/** Lower-case words of a name, for matching an adapter with what a vendor tool lists. */
function words(name: string): string[] {
  return name
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(
      (w) => w.length > 0 && !['nvidia', 'amd', 'geforce', 'radeon', 'graphics', 'corporation'].includes(w),
    );
}

/**
 * The vendor tool's entry for this adapter (its VRAM): same vendor, and every distinctive word of the
 * tool's name in Dawn's device name ("RTX 4090" in both), the most such words winning. Null when none
 * matches (lspci names chips, not boards, and lists no memory anyway).
 */
export function matchListedGpu(
  info: Pick<WebgpuAdapterInfo, 'vendor' | 'device'>,
  listed: readonly ListedGpu[],
): ListedGpu | null {
  const adapterWords = new Set(words(`${info.device}`));
  const vendor = VENDOR_ALIASES[info.vendor.toLowerCase()];
  let best: ListedGpu | null = null;
  let bestScore = 0;
  for (const g of listed) {
    if (g.memoryMiB === null) continue;
    if (vendor !== undefined && !vendor.test(`${g.vendor} ${g.name}`)) continue;
    const w = words(g.name);
    if (w.length === 0 || !w.every((x) => adapterWords.has(x))) continue;
    if (w.length > bestScore) {
      best = g;
      bestScore = w.length;
    }
  }
  return best;
}

/** Where an advertised GPU's VRAM figure came from. */
export type VramSource = 'vendor-tool' | 'host-memory' | 'max-buffer';

export interface AdvertGpu extends GpuInfo {
  readonly vramSource: VramSource;
}

/**
 * The advert entry of one hardware adapter, or null for a software one (never a GPU). VRAM: what a
 * vendor tool lists for it (nvidia-smi, rocm-smi, system_profiler); else the host's memory on
 * unified-memory vendors (Apple silicon); else the adapter's maxBufferSize, a lower bound (the
 * adapter allocates at least one such buffer), never a guess above what Dawn said.
 */
export function webgpuAdvertGpu(
  info: WebgpuAdapterInfo,
  context: { readonly listed: readonly ListedGpu[]; readonly hostMemoryBytes: number },
): AdvertGpu | null {
  if (info.software || isSoftwareAdapter(info)) return null;
  const model = webgpuModelName(info);
  if (model === null) return null;
  const match = matchListedGpu(info, context.listed);
  let vramMiB: number;
  let vramSource: VramSource;
  if (match?.memoryMiB) {
    vramMiB = match.memoryMiB;
    vramSource = 'vendor-tool';
  } else if (UNIFIED_MEMORY_VENDORS.test(info.vendor) || /^apple\b/i.test(info.device)) {
    vramMiB = Math.floor(context.hostMemoryBytes / MIB);
    vramSource = 'host-memory';
  } else {
    vramMiB = Math.floor((info.maxBufferBytes ?? 0) / MIB);
    vramSource = 'max-buffer';
  }
  vramMiB = Math.min(MAX_GPU_VRAM_MIB, Math.max(1, vramMiB));
  return { model, vramMiB, vramSource };
}

/**
 * The GPUs of an advert: tensorflow-gpu lists the CUDA devices; webgpu one entry per distinct hardware
 * adapter its executors opened (identical GPUs share one executor, so they are one entry: jobs use one
 * of them); every other backend, and a software adapter, none.
 */
export function advertisedGpus(input: {
  readonly backend: Backend;
  readonly cuda: Pick<GpuDetection, 'gpus'>;
  readonly webgpuAdapters: readonly WebgpuAdapterInfo[];
  readonly listed: readonly ListedGpu[];
  readonly hostMemoryBytes: number;
}): AdvertGpu[] {
  if (input.backend === 'tensorflow-gpu') {
    return input.cuda.gpus.map((g) => ({
      model: g.model,
      vramMiB: g.vramMiB,
      ...(g.computeCapability ? { computeCapability: g.computeCapability } : {}),
      vramSource: 'vendor-tool' as const,
    }));
  }
  if (input.backend !== 'webgpu') return [];
  const gpus: AdvertGpu[] = [];
  const seen = new Set<string>();
  for (const info of input.webgpuAdapters) {
    const gpu = webgpuAdvertGpu(info, input);
    if (gpu === null) continue;
    const key = `${info.dawnBackend}|${info.vendor}|${info.device}|${info.description}`;
    if (seen.has(key)) continue;
    seen.add(key);
    gpus.push(gpu);
  }
  return gpus;
}

/** The advert's wire form of the GPUs (without where their VRAM figure came from). */
export function toAdvertGpuInfo(gpus: readonly AdvertGpu[]): GpuInfo[] {
  return gpus.map(({ vramSource: _source, ...g }) => g);
}
