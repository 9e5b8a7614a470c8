import { describe, expect, it } from 'vitest';

import {
  describeWebgpuAdapter,
  ensureEglPlatform,
  isSoftwareAdapter,
  listWebgpuAdapters,
  parseDawnAdapterList,
  requestWebgpuAdapter,
} from './webgpu.js';

const blank = { vendor: '', architecture: '', device: '', description: '' };

describe('WebGPU adapter classification', () => {
  it('calls the software rasterisers software, whichever field names them', () => {
    expect(isSoftwareAdapter({ ...blank, device: 'llvmpipe-llvm-15-0-6-256-bits-' })).toBe(true);
    expect(isSoftwareAdapter({ ...blank, description: 'llvmpipe (LLVM 15.0.6, 256 bits)' })).toBe(true);
    expect(isSoftwareAdapter({ ...blank, vendor: 'mesa', device: 'lavapipe' })).toBe(true);
    expect(isSoftwareAdapter({ ...blank, vendor: 'google', architecture: 'swiftshader' })).toBe(true);
    expect(isSoftwareAdapter({ ...blank, description: 'Microsoft Basic Render Driver' })).toBe(true);
    expect(isSoftwareAdapter({ ...blank, device: 'anything' }, true)).toBe(true);
  });

  it('calls real GPUs hardware', () => {
    expect(
      isSoftwareAdapter({ ...blank, vendor: 'nvidia', architecture: 'hopper', device: 'NVIDIA H100' }),
    ).toBe(false);
    expect(
      isSoftwareAdapter({
        ...blank,
        vendor: 'amd',
        architecture: 'rdna-3',
        description: 'Radeon RX 7900 XTX',
      }),
    ).toBe(false);
    expect(
      isSoftwareAdapter({ ...blank, vendor: 'apple', architecture: 'metal-3', device: 'Apple M3 Max' }),
    ).toBe(false);
    expect(
      isSoftwareAdapter({
        ...blank,
        vendor: 'intel',
        architecture: 'xe-lpg',
        description: 'Intel(R) Arc(TM)',
      }),
    ).toBe(false);
  });

  it('names the adapter with its Dawn backend and class', () => {
    expect(
      describeWebgpuAdapter({
        vendor: 'nvidia',
        architecture: 'ada',
        device: 'RTX 4090',
        description: 'Vulkan 1.3',
        dawnBackend: 'default',
        software: false,
      }),
    ).toBe('nvidia ada RTX 4090 (Vulkan 1.3) via default');
    expect(
      describeWebgpuAdapter({ ...blank, device: 'llvmpipe', dawnBackend: 'opengles', software: true }),
    ).toBe('llvmpipe via opengles, software');
  });

  it('sets EGL_PLATFORM=surfaceless only when the operator set none', () => {
    const env: NodeJS.ProcessEnv = {};
    ensureEglPlatform(env);
    expect(env.EGL_PLATFORM).toBe('surfaceless');
    const chosen: NodeJS.ProcessEnv = { EGL_PLATFORM: 'x11' };
    ensureEglPlatform(chosen);
    expect(chosen.EGL_PLATFORM).toBe('x11');
  });
});

describe('the adapters Dawn lists', () => {
  it("reads them from dawn.node 0.6.2's answer to an adapter name it does not have (recorded here)", () => {
    const recorded =
      "no adapter with backend 'opengles' and name '__gpumesh_list_adapters__' found\nAvailable adapters:\n * backend: 'opengles', name: 'llvmpipe (LLVM 15.0.6, 256 bits)'";
    expect(parseDawnAdapterList(recorded)).toEqual([
      { backend: 'opengles', name: 'llvmpipe (LLVM 15.0.6, 256 bits)' },
    ]);
    const two =
      "no adapter with backend 'vulkan' and name 'x' found\nAvailable adapters:\n * backend: 'vulkan', name: 'NVIDIA GeForce RTX 4090'\n * backend: 'vulkan', name: 'NVIDIA GeForce RTX 3090'";
    expect(parseDawnAdapterList(two).map((a) => a.name)).toEqual([
      'NVIDIA GeForce RTX 4090',
      'NVIDIA GeForce RTX 3090',
    ]);
    expect(parseDawnAdapterList('no adapter')).toEqual([]);
  });

  it('lists and opens an adapter by name on the real Dawn (llvmpipe here; CI has it)', async (ctx) => {
    let available = true;
    try {
      await requestWebgpuAdapter();
    } catch (err) {
      if (process.env.CI) throw err;
      available = false;
    }
    if (!available) {
      ctx.skip('no WebGPU adapter here (Debian libegl-mesa0 libgl1-mesa-dri libgles2)');
      return;
    }
    const listed = await listWebgpuAdapters('opengles');
    expect(listed.length).toBeGreaterThan(0);
    const first = listed[0].name.split(' ')[0];
    const byName = await requestWebgpuAdapter({ adapterName: first });
    expect(byName.info.device).toContain(first);
    await expect(requestWebgpuAdapter({ adapterName: '__no_such_gpu__' })).rejects.toThrow(
      /no WebGPU adapter/,
    );
  });
});
