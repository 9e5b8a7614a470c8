// What an advert lists as GPUs, from the adapter info Dawn gives (test-fixtures/webgpu-adapters/: the
// llvmpipe entry recorded here, the hardware ones shaped like Dawn's output, not recorded on hardware)
// and the vendor tools' lists; and that the coordinator's gossip validation accepts the advert.
import { readFileSync } from 'node:fs';
import { Wallet } from 'ethers';
import { describe, expect, it } from 'vitest';
import type { WebgpuAdapterInfo } from '@gpumesh/compute';
import { encodeGossipPayload, GossipValidationError, validateAdvertGossip } from '@gpumesh/p2p';
import {
  PROTOCOL_VERSION,
  ReplayGuard,
  canonicalBytes,
  createPeerBinding,
  signPayload,
  signPersonalMessage,
  type Backend,
  type GpuInfo,
  type ProviderAdvert,
  type Signed,
} from '@gpumesh/protocol';

import {
  advertisedGpus,
  matchListedGpu,
  toAdvertGpuInfo,
  webgpuAdvertGpu,
  webgpuModelName,
} from './advert-gpus.js';
import { listFromNvidiaSmi, parseRocmSmiJson, parseSystemProfilerJson, type ListedGpu } from './gpu-list.js';

const FIXTURES = new URL('../../test-fixtures/', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, FIXTURES), 'utf8');
const ADAPTERS = JSON.parse(read('webgpu-adapters/adapters.json')) as Record<string, WebgpuAdapterInfo>;
const adapter = (key: string): WebgpuAdapterInfo => {
  const info = ADAPTERS[key];
  if (info === undefined) throw new Error(`no adapter fixture ${key}`);
  return info;
};

const nvidiaSmi = listFromNvidiaSmi(JSON.parse(read('nvidia-smi/rtx4090.json'))).gpus;
const appleProfiler = parseSystemProfilerJson(read('gpu-list/system-profiler-m2-max.json'));
/** rocm-smi's JSON for one RX 7900 XTX (24 GiB), in the format of test-fixtures/gpu-list/rocm-smi-mi300x-2x.json. */
const rocmSmi = parseRocmSmiJson(
  JSON.stringify({
    card0: {
      'Card Series': 'Radeon RX 7900 XTX',
      'Card Vendor': 'Advanced Micro Devices, Inc. [AMD/ATI]',
      'GFX Version': 'gfx1100',
      'VRAM Total Memory (B)': '25753026560',
    },
  }),
);
const HOST_64_GIB = 64 * 1024 ** 3;
const NO_CUDA = { gpus: [] };

function gpusOf(backend: Backend, adapters: WebgpuAdapterInfo[], listed: ListedGpu[] = []): GpuInfo[] {
  return toAdvertGpuInfo(
    advertisedGpus({
      backend,
      cuda: NO_CUDA,
      webgpuAdapters: adapters,
      listed,
      hostMemoryBytes: HOST_64_GIB,
    }),
  );
}

const WALLET = new Wallet(`0x${'42'.repeat(32)}`);
const PEER = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA';
const NOW = 1_750_000_000_000;

async function advertFields(
  backend: Backend,
  gpus: GpuInfo[],
  gflops: number,
): Promise<Omit<ProviderAdvert, 'binding'> & { binding: ProviderAdvert['binding'] }> {
  return {
    version: PROTOCOL_VERSION,
    peerId: PEER,
    address: WALLET.address,
    operatorId: WALLET.address,
    seq: 1,
    issuedAt: NOW,
    expiresAt: NOW + 60_000,
    backend,
    gpus,
    gflops,
    pricePerUnit: '2',
    slots: 4,
    freeSlots: 4,
    binding: await createPeerBinding(WALLET, PEER, NOW - 1),
  };
}

/** The coordinator's gossip verdict on an advert: ACCEPT, or the action and code of its refusal. */
function verdict(signed: Signed<ProviderAdvert>): 'ACCEPT' | { action: string; code: string } {
  try {
    validateAdvertGossip(
      { replayGuard: new ReplayGuard(), now: () => NOW },
      { from: PEER, data: encodeGossipPayload('advert', signed) },
    );
    return 'ACCEPT';
  } catch (err) {
    if (!(err instanceof GossipValidationError)) throw err;
    return { action: err.action, code: err.code };
  }
}

describe('GPUs of a webgpu advert', () => {
  it('lists an RTX 4090 on Vulkan under the name nvidia-smi gives it, with its VRAM', () => {
    const gpu = webgpuAdvertGpu(adapter('rtx4090-vulkan'), {
      listed: nvidiaSmi,
      hostMemoryBytes: HOST_64_GIB,
    });
    expect(gpu).toEqual({ model: 'NVIDIA GeForce RTX 4090', vramMiB: 24_564, vramSource: 'vendor-tool' });
    // The same model name as the CUDA path advertises, so a job asking for it matches either backend.
    expect(gpu?.model).toBe(nvidiaSmi[0]?.name);
  });

  it('lists an Apple M2 Max on Metal with the host memory it shares', () => {
    const gpu = webgpuAdvertGpu(adapter('m2max-metal'), {
      listed: appleProfiler,
      hostMemoryBytes: HOST_64_GIB,
    });
    expect(gpu).toEqual({ model: 'Apple M2 Max', vramMiB: 65_536, vramSource: 'host-memory' });
  });

  it('lists an AMD RX 7900 XTX on Vulkan (RADV) with the VRAM rocm-smi gives', () => {
    const info = adapter('rx7900xtx-vulkan');
    expect(matchListedGpu(info, rocmSmi)?.name).toBe('Radeon RX 7900 XTX');
    expect(webgpuAdvertGpu(info, { listed: rocmSmi, hostMemoryBytes: HOST_64_GIB })).toEqual({
      model: 'AMD Radeon RX 7900 XTX (RADV NAVI31)',
      vramMiB: 24_560,
      vramSource: 'vendor-tool',
    });
  });

  it('without a vendor tool that knows the GPU, claims no more VRAM than the adapter allocates in one buffer', () => {
    const gpu = webgpuAdvertGpu(adapter('arc-a770-vulkan'), {
      listed: nvidiaSmi,
      hostMemoryBytes: HOST_64_GIB,
    });
    expect(gpu).toEqual({
      model: 'Intel(R) Arc(tm) A770 Graphics (DG2)',
      vramMiB: 4096,
      vramSource: 'max-buffer',
    });
  });

  it('never matches another vendor’s GPU or a board whose name it does not contain', () => {
    expect(matchListedGpu(adapter('rx7900xtx-vulkan'), nvidiaSmi)).toBeNull();
    expect(matchListedGpu(adapter('rtx4090-vulkan'), rocmSmi)).toBeNull();
    const other: ListedGpu = {
      ...nvidiaSmi[0],
      name: 'NVIDIA GeForce RTX 3090',
      memoryMiB: 24_576,
    } as ListedGpu;
    expect(matchListedGpu(adapter('rtx4090-vulkan'), [other])).toBeNull();
  });

  it.each(['llvmpipe-opengles', 'lavapipe-vulkan', 'swiftshader-vulkan', 'basic-render-d3d12'])(
    'lists no GPU for the software adapter %s (CPU-class)',
    (key) => {
      const info = adapter(key);
      expect(info.software).toBe(true);
      expect(webgpuAdvertGpu(info, { listed: nvidiaSmi, hostMemoryBytes: HOST_64_GIB })).toBeNull();
      // Even if a caller forgot the flag, the name gives it away.
      expect(
        webgpuAdvertGpu({ ...info, software: false }, { listed: [], hostMemoryBytes: HOST_64_GIB }),
      ).toBeNull();
      expect(gpusOf('webgpu', [info])).toEqual([]);
    },
  );

  it('lists each distinct hardware adapter once, and nothing on a CPU backend', () => {
    const rtx = adapter('rtx4090-vulkan');
    const amd = adapter('rx7900xtx-vulkan');
    expect(
      gpusOf('webgpu', [rtx, rtx, amd, adapter('llvmpipe-opengles')], [...nvidiaSmi, ...rocmSmi]),
    ).toEqual([
      { model: 'NVIDIA GeForce RTX 4090', vramMiB: 24_564 },
      { model: 'AMD Radeon RX 7900 XTX (RADV NAVI31)', vramMiB: 24_560 },
    ]);
    for (const backend of ['tensorflow', 'wasm', 'cpu'] as const) expect(gpusOf(backend, [rtx])).toEqual([]);
  });

  it('names an adapter without a device name by vendor and architecture, and keeps names within the protocol', () => {
    expect(webgpuModelName({ vendor: 'nvidia', architecture: 'hopper', device: '' })).toBe('nvidia hopper');
    expect(webgpuModelName({ vendor: '', architecture: '', device: '' })).toBeNull();
    expect(
      webgpuModelName({ vendor: '', architecture: '', device: '  GPU™ «x» '.repeat(20) })?.length,
    ).toBeLessThanOrEqual(64);
  });
});

describe('a webgpu advert at the coordinator', () => {
  it('accepts a hardware adapter advertised as a GPU with a GPU-class speed', async () => {
    const gpus = gpusOf('webgpu', [adapter('rtx4090-vulkan')], nvidiaSmi);
    // Above what an advert without a GPU may claim (100 TFLOP/s), within one GPU's allowance.
    const signed = await signPayload('advert', await advertFields('webgpu', gpus, 150_000), WALLET);
    expect(verdict(signed)).toBe('ACCEPT');
  });

  it('accepts llvmpipe as CPU-class only: no GPU, and capped at the CPU allowance', async () => {
    const gpus = gpusOf('webgpu', [adapter('llvmpipe-opengles')]);
    expect(gpus).toEqual([]);
    const signed = await signPayload('advert', await advertFields('webgpu', gpus, 2.2), WALLET);
    expect(verdict(signed)).toBe('ACCEPT');
    await expect(
      signPayload('advert', await advertFields('webgpu', gpus, 150_000), WALLET),
    ).rejects.toThrow();
  });

  it('REJECTs a CPU backend that lists a GPU (signed by hand: signPayload refuses it)', async () => {
    const fields = await advertFields('wasm', [{ model: 'NVIDIA GeForce RTX 4090', vramMiB: 24_564 }], 50);
    const signature = await signPersonalMessage(WALLET, canonicalBytes('advert', fields));
    const forged = {
      payload: fields,
      signature,
      signer: WALLET.address.toLowerCase(),
    } as unknown as Signed<ProviderAdvert>;
    expect(verdict(forged)).toEqual({ action: 'REJECT', code: 'ADVERT_OUT_OF_RANGE' });
  });
});
