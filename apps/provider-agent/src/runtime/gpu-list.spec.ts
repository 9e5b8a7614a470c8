// The GPU list of gpu-check, from each tool's output format (test-fixtures/gpu-list/, not recorded on
// hardware) and the recorded nvidia-smi runs doctor is tested with.
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import type { CommandResult } from './command.js';
import { listGpus, parseLspci, parseRocmSmiJson, parseSystemProfilerJson } from './gpu-list.js';

const FIXTURES = new URL('../../test-fixtures/', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, FIXTURES), 'utf8');
const nvidia = (name: string): CommandResult => ({
  ...(JSON.parse(read(`nvidia-smi/${name}.json`)) as CommandResult),
  timedOut: false,
});
const absent: CommandResult = {
  exitCode: null,
  stdout: '',
  stderr: '',
  errorCode: 'ENOENT',
  timedOut: false,
};

describe('GPU lists', () => {
  it('lspci -nn: display controllers only (3D, VGA), without the revision', () => {
    const gpus = parseLspci(read('gpu-list/lspci-h100-aspeed.txt'));
    expect(gpus.map((g) => [g.vendor, g.name])).toEqual([
      ['ASPEED', 'ASPEED Technology, Inc. ASPEED Graphics Family'],
      ['NVIDIA', 'NVIDIA Corporation GH100 [H100 SXM5 80GB]'],
      ['NVIDIA', 'NVIDIA Corporation GH100 [H100 SXM5 80GB]'],
    ]);
    expect(gpus[1].detail).toBe('18:00.0 3D controller');
    const desktop = parseLspci(read('gpu-list/lspci-radeon-desktop.txt'));
    expect(desktop.map((g) => g.vendor)).toEqual(['Intel', 'Advanced Micro Devices']); // not the HDMI audio
    expect(desktop[1].name).toMatch(/Navi 31 \[Radeon RX 7900 XT\/7900 XTX\/7900M\]$/);
  });

  it('rocm-smi --json: series, vendor and VRAM per card', () => {
    const gpus = parseRocmSmiJson(read('gpu-list/rocm-smi-mi300x-2x.json'));
    expect(gpus).toHaveLength(2);
    expect(gpus[0]).toMatchObject({
      source: 'rocm-smi',
      name: 'AMD Instinct MI300X OAM',
      memoryMiB: 196288,
      detail: 'card0 gfx942',
    });
    expect(parseRocmSmiJson('not json')).toEqual([]);
  });

  it('system_profiler -json: the Apple GPU, its cores and Metal family', () => {
    expect(parseSystemProfilerJson(read('gpu-list/system-profiler-m2-max.json'))).toEqual([
      {
        source: 'system_profiler',
        name: 'Apple M2 Max',
        vendor: 'Apple',
        memoryMiB: null,
        driver: null,
        detail: '38 cores, metal3',
      },
    ]);
  });

  it('runs whichever tools exist and says which do not', async () => {
    const calls: string[] = [];
    const listing = await listGpus(async (file) => {
      calls.push(file);
      if (file === 'nvidia-smi') return nvidia('h100-8x');
      if (file === 'lspci')
        return { exitCode: 0, stdout: read('gpu-list/lspci-h100-aspeed.txt'), stderr: '', timedOut: false };
      return absent;
    });
    expect(calls).toEqual(['nvidia-smi', 'rocm-smi', 'system_profiler', 'lspci']);
    expect(listing.gpus.filter((g) => g.source === 'nvidia-smi')).toHaveLength(8);
    expect(listing.gpus[0]).toMatchObject({
      name: 'NVIDIA H100 80GB HBM3',
      memoryMiB: 81559,
      driver: '535.129.03',
      detail: '#0 compute 9.0',
    });
    expect(listing.tools.map((t) => `${t.tool} ${t.status}`)).toEqual([
      'nvidia-smi ok',
      'rocm-smi absent',
      'system_profiler absent',
      'lspci ok',
    ]);
  });

  it('a broken driver is a failed tool, not an empty machine', async () => {
    const listing = await listGpus(async (file) => (file === 'nvidia-smi' ? nvidia('driver-error') : absent));
    expect(listing.gpus).toEqual([]);
    expect(listing.tools[0]).toMatchObject({ tool: 'nvidia-smi', status: 'failed' });
    expect(listing.tools[0].message).toMatch(/couldn't communicate with the NVIDIA driver/);
  });
});
