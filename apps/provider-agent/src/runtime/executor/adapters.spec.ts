import { describe, expect, it } from 'vitest';

import type { DawnAdapterListing, WebgpuAdapterInfo } from '@gpumesh/compute';

import { adapterForSlot, confirmWebgpuAdapters, planWebgpuAdapters } from './adapters.js';

const vulkan = (name: string): DawnAdapterListing => ({ backend: 'vulkan', name });
const chosen = (over: Partial<WebgpuAdapterInfo> = {}): WebgpuAdapterInfo => ({
  vendor: 'nvidia',
  architecture: 'ada',
  device: 'NVIDIA GeForce RTX 4090',
  description: '',
  dawnBackend: 'default',
  software: false,
  ...over,
});

describe('one executor per WebGPU adapter', () => {
  it('a box with two different GPUs: one executor each, lavapipe and other backends left out', () => {
    const listed = [
      vulkan('NVIDIA GeForce RTX 4090'),
      vulkan('NVIDIA GeForce RTX 3090'),
      vulkan('llvmpipe (LLVM 15.0.6, 256 bits)'),
      { backend: 'opengles', name: 'NVIDIA GeForce RTX 4090/PCIe/SSE2' },
    ];
    const names = planWebgpuAdapters(listed, chosen(), 'linux');
    expect(names).toEqual(['NVIDIA GeForce RTX 4090', 'NVIDIA GeForce RTX 3090']);
    expect([0, 1, 2].map((slot) => adapterForSlot(names, slot))).toEqual([
      'NVIDIA GeForce RTX 4090',
      'NVIDIA GeForce RTX 3090',
      'NVIDIA GeForce RTX 4090',
    ]);
  });

  it('identical GPUs (8× H100) are one name to Dawn: one executor on its own choice', () => {
    const listed = Array.from({ length: 8 }, () => vulkan('NVIDIA H100 80GB HBM3'));
    expect(planWebgpuAdapters(listed, chosen({ device: 'NVIDIA H100 80GB HBM3' }), 'linux')).toEqual([]);
    expect(adapterForSlot([], 0)).toBeUndefined();
  });

  it('a name inside another would select the other first: both dropped, so no executor lands twice', () => {
    const listed = [
      vulkan('AMD Radeon RX 7900 XT'),
      vulkan('AMD Radeon RX 7900 XTX'),
      vulkan('Intel(R) Arc(TM) A770'),
    ];
    expect(planWebgpuAdapters(listed, chosen(), 'linux')).toEqual([
      'AMD Radeon RX 7900 XTX',
      'Intel(R) Arc(TM) A770',
    ]);
  });

  it('a software adapter, no adapter or the other platforms’ backends', () => {
    const listed = [vulkan('A'), vulkan('B')];
    expect(planWebgpuAdapters(listed, chosen({ software: true }), 'linux')).toEqual([]);
    expect(planWebgpuAdapters(listed, undefined, 'linux')).toEqual([]);
    expect(planWebgpuAdapters(listed, chosen(), 'darwin')).toEqual([]);
    const metal = [
      { backend: 'metal', name: 'AMD Radeon Pro 5500M' },
      { backend: 'metal', name: 'Intel(R) UHD Graphics 630' },
    ];
    expect(planWebgpuAdapters(metal, chosen(), 'darwin')).toHaveLength(2);
  });
});

describe('confirming the adapters by opening them', () => {
  it('drops a name that opens nothing, a software adapter, and a second name for the same adapter', async () => {
    const opened: Record<string, WebgpuAdapterInfo | null> = {
      'NVIDIA GeForce RTX 4090': chosen(),
      'NVIDIA GeForce RTX 3090': chosen({ device: 'NVIDIA GeForce RTX 3090' }),
      'RTX 4090 (alias)': chosen(),
      'Ghost GPU': null,
      llvm: chosen({ device: 'llvmpipe', software: true }),
    };
    const asked: string[] = [];
    const kept = await confirmWebgpuAdapters(Object.keys(opened), async (name) => {
      asked.push(name);
      return opened[name] ?? null;
    });
    expect(asked).toEqual(Object.keys(opened));
    expect(kept).toEqual(['NVIDIA GeForce RTX 4090', 'NVIDIA GeForce RTX 3090']);
    // One adapter left: one executor on Dawn's own choice.
    expect(
      await confirmWebgpuAdapters(['NVIDIA GeForce RTX 4090', 'Ghost GPU'], async (n) => opened[n] ?? null),
    ).toEqual([]);
  });
});
