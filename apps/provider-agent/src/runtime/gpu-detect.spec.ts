import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import type { CommandResult, CommandRunner } from './command.js';
import { detectGpus, nvidiaSmiArgs, parseNvidiaSmiCsv, type GraphicsProbe } from './gpu-detect.js';

const FIXTURES = new URL('../../test-fixtures/nvidia-smi/', import.meta.url);

function fixture(name: string): CommandResult & { command: string } {
  const raw = JSON.parse(readFileSync(new URL(`${name}.json`, FIXTURES), 'utf8')) as {
    command: string;
    exitCode: number | null;
    stdout: string;
    stderr: string;
    errorCode?: string;
  };
  return { ...raw, timedOut: false };
}

function replay(...results: CommandResult[]): { run: CommandRunner; calls: string[][] } {
  const calls: string[][] = [];
  const run: CommandRunner = async (file, args) => {
    calls.push([file, ...args]);
    const r = results.shift();
    if (!r) throw new Error('unexpected command');
    return r;
  };
  return { run, calls };
}

const noGraphics: GraphicsProbe = async () => ({ controllers: [] });

describe('detectGpus (recorded nvidia-smi outputs)', () => {
  it('runs the documented query with a timeout', async () => {
    const fx = fixture('rtx4090');
    const { run, calls } = replay(fx);
    await detectGpus({ run, graphics: noGraphics });
    expect(calls[0].join(' ')).toBe(fx.command);
    expect(nvidiaSmiArgs(false)[0]).not.toMatch(/compute_cap/);
  });

  it('parses 8× H100', async () => {
    const d = await detectGpus({ run: replay(fixture('h100-8x')).run, graphics: noGraphics });
    expect(d.status).toBe('ok');
    expect(d.gpus).toHaveLength(8);
    expect(d.gpus[7]).toMatchObject({
      index: 7,
      model: 'NVIDIA H100 80GB HBM3',
      uuid: 'GPU-e0a3c8f5-2d6b-4b1a-9e7c-3c2b8d4f5a88',
      vramMiB: 81559,
      driverVersion: '535.129.03',
      computeCapability: '9.0',
      source: 'nvidia-smi',
    });
  });

  it('parses 2× A100 with one busy', async () => {
    const d = await detectGpus({ run: replay(fixture('a100-2x')).run, graphics: noGraphics });
    expect(
      d.gpus.map((g) => [g.model, g.vramMiB, g.computeCapability, g.vramUsedMiB, g.utilizationPct]),
    ).toEqual([
      ['NVIDIA A100-SXM4-40GB', 40960, '8.0', 4, 0],
      ['NVIDIA A100-SXM4-40GB', 40960, '8.0', 31287, 97],
    ]);
  });

  it('parses an RTX 4090', async () => {
    const d = await detectGpus({ run: replay(fixture('rtx4090')).run, graphics: noGraphics });
    expect(d.gpus).toEqual([
      expect.objectContaining({
        index: 0,
        model: 'NVIDIA GeForce RTX 4090',
        vramMiB: 24564,
        driverVersion: '550.54.15',
        computeCapability: '8.9',
      }),
    ]);
    expect(d.message).toMatch(/1 NVIDIA GPU/);
  });

  it('no GPUs: nvidia-smi runs but finds none', async () => {
    const d = await detectGpus({ run: replay(fixture('none')).run, graphics: noGraphics });
    expect(d).toMatchObject({ status: 'no-gpus', gpus: [] });
  });

  it('driver error: cannot communicate with the driver', async () => {
    const d = await detectGpus({
      run: replay(fixture('driver-error')).run,
      graphics: async () => ({
        controllers: [{ vendor: 'NVIDIA Corporation', model: 'AD102 [GeForce RTX 4090]', vram: 24564 }],
      }),
    });
    expect(d.status).toBe('driver-error');
    expect(d.message).toMatch(/couldn't communicate with the NVIDIA driver/);
    expect(d.hint).toMatch(/dmesg/);
    expect(d.otherControllers[0]).toMatchObject({
      vendor: 'NVIDIA Corporation',
      source: 'systeminformation',
    });
  });

  it('driver error: NVML version mismatch gets its own advice', async () => {
    const d = await detectGpus({ run: replay(fixture('version-mismatch')).run, graphics: noGraphics });
    expect(d.status).toBe('driver-error');
    expect(d.hint).toMatch(/reboot/);
  });

  it('a hanging nvidia-smi is a driver error', async () => {
    const d = await detectGpus({
      run: replay({ exitCode: null, stdout: '', stderr: '', errorCode: 'ETIMEDOUT', timedOut: true }).run,
      graphics: noGraphics,
    });
    expect(d.status).toBe('driver-error');
    expect(d.message).toMatch(/timed out/);
  });

  it('no NVIDIA tooling: falls back to systeminformation', async () => {
    const d = await detectGpus({
      run: replay(fixture('not-installed')).run,
      graphics: async () => ({
        controllers: [{ vendor: 'Intel Corporation', model: 'UHD Graphics 770', vram: 256 }],
      }),
    });
    expect(d.status).toBe('no-nvidia-tooling');
    expect(d.gpus).toEqual([]);
    expect(d.otherControllers).toEqual([
      expect.objectContaining({ vendor: 'Intel Corporation', model: 'UHD Graphics 770', vramMiB: 256 }),
    ]);
    expect(d.hint).toMatch(/CPU/);
  });

  it('old drivers without compute_cap are queried again without it', async () => {
    const { run, calls } = replay(
      {
        exitCode: 2,
        stdout: 'Field "compute_cap" is not a valid field to query.\n',
        stderr: '',
        timedOut: false,
      },
      {
        exitCode: 0,
        stdout: '0, Tesla T4, GPU-0a1b, 15360, 0, 460.106.00, 0\n',
        stderr: '',
        timedOut: false,
      },
    );
    const d = await detectGpus({ run, graphics: noGraphics });
    expect(calls).toHaveLength(2);
    expect(d.gpus[0]).toMatchObject({
      model: 'Tesla T4',
      vramMiB: 15360,
      computeCapability: null,
      utilizationPct: 0,
    });
  });

  it('skips malformed lines and [N/A] fields', () => {
    expect(parseNvidiaSmiCsv('garbage\n0, Foo, [N/A], 1024, [N/A], 535.1, [N/A], [N/A]\n')).toEqual([
      expect.objectContaining({
        index: 0,
        model: 'Foo',
        uuid: null,
        computeCapability: null,
        vramUsedMiB: undefined,
      }),
    ]);
  });

  it('runs for real on this machine (no nvidia-smi here)', async () => {
    const d = await detectGpus({ timeoutMs: 5_000 });
    expect(['no-nvidia-tooling', 'ok', 'no-gpus', 'driver-error']).toContain(d.status);
  });
});
