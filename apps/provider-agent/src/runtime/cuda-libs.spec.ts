import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import {
  checkCudaLibraries,
  explainTfGpuLog,
  parseLdconfig,
  parseTfGpuLog,
  probeCudaLibraries,
  scanLibraryPath,
} from './cuda-libs.js';

const FIXTURES = new URL('../../test-fixtures/', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, FIXTURES), 'utf8');

// UNVERIFIED ON HARDWARE: recorded outputs only; this workplace has no GPU and no CUDA.
describe('CUDA libraries for tfjs-node-gpu 4.22 (recorded ldconfig -p)', () => {
  it('parses ldconfig -p lines, including the OS ABI form', () => {
    const entries = parseLdconfig(read('ldconfig/cuda112-complete.txt'));
    expect(entries.find((e) => e.soname === 'libcudart.so.11.0')).toEqual({
      soname: 'libcudart.so.11.0',
      flags: 'libc6,x86-64',
      path: '/usr/local/cuda-11.2/targets/x86_64-linux/lib/libcudart.so.11.0',
    });
    expect(entries.find((e) => e.soname === 'libc.so.6')).toMatchObject({
      flags: 'libc6,x86-64, OS ABI: Linux 3.2.0',
      path: '/lib/x86_64-linux-gnu/libc.so.6',
    });
    // the i386 libcuda is not counted on x86-64
    expect(entries.filter((e) => e.soname === 'libcuda.so.1')).toHaveLength(2);
  });

  it('complete CUDA 11.2 + cuDNN 8 install: nothing missing', () => {
    const c = checkCudaLibraries(read('ldconfig/cuda112-complete.txt'), [], 'x86-64');
    expect(c.missing).toEqual([]);
    expect(c.found).toHaveLength(9);
    expect(c.advice).toEqual([]);
  });

  it('missing cuDNN: names libcudnn.so.8 and the apt package', () => {
    const c = checkCudaLibraries(read('ldconfig/cuda112-missing-cudnn.txt'), [], 'x86-64');
    expect(c.missing.map((l) => l.soname)).toEqual(['libcudnn.so.8']);
    expect(c.advice.join('\n')).toMatch(/libcudnn8=8\.1\.1\.33-1\+cuda11\.2/);
  });

  it('CUDA 12 only: every CUDA 11 soname missing, other versions reported', () => {
    const c = checkCudaLibraries(read('ldconfig/cuda12-only.txt'), [], 'x86-64');
    expect(c.missing.map((l) => l.soname)).toEqual([
      'libcudart.so.11.0',
      'libcublas.so.11',
      'libcublasLt.so.11',
      'libcufft.so.10',
      'libcusparse.so.11',
      'libcudnn.so.8',
    ]);
    expect(c.otherVersions).toContain('libcudart.so.12');
    expect(c.advice.join('\n')).toMatch(/cuda-cudart-11-2.*libcublas-11-2/);
  });

  it('driver only: the toolkit libraries are missing, libcuda is found (x86-64 only)', () => {
    const c = checkCudaLibraries(read('ldconfig/driver-only.txt'), [], 'x86-64');
    expect(c.found).toEqual([{ soname: 'libcuda.so.1', path: '/lib/x86_64-linux-gnu/libcuda.so.1' }]);
    expect(c.missing).toHaveLength(8);
  });

  it('this workplace: no NVIDIA software at all, driver advice first', () => {
    const c = checkCudaLibraries(read('ldconfig/workplace-no-nvidia.txt'), [], 'x86-64');
    expect(c.missing).toHaveLength(9);
    expect(c.advice[0]).toMatch(/libcuda\.so\.1.*NVIDIA driver/);
  });

  it('libraries on LD_LIBRARY_PATH count as found', () => {
    const extra = scanLibraryPath('/opt/cudnn/lib:/nonexistent', (dir) => {
      if (dir === '/opt/cudnn/lib') return ['libcudnn.so.8', 'libcudnn.so.8.1.1', 'README'];
      throw new Error('ENOENT');
    });
    expect(extra).toEqual([{ soname: 'libcudnn.so.8', path: '/opt/cudnn/lib/libcudnn.so.8' }]);
    expect(checkCudaLibraries(read('ldconfig/cuda112-missing-cudnn.txt'), extra, 'x86-64').missing).toEqual(
      [],
    );
  });

  it('probes with ldconfig -p through the injected runner', async () => {
    const calls: string[] = [];
    const c = await probeCudaLibraries(async (file, args) => {
      calls.push([file, ...args].join(' '));
      return { exitCode: 0, stdout: read('ldconfig/cuda112-complete.txt'), stderr: '', timedOut: false };
    }, undefined);
    expect(calls).toEqual(['ldconfig -p']);
    expect(c.ldconfigOk).toBe(true);
    if (process.arch === 'x64') expect(c.missing).toEqual([]);
  });
});

describe('TensorFlow GPU log (recorded stderr)', () => {
  it('GPU device created', () => {
    const log = parseTfGpuLog(read('tf-log/gpu-ok.log'));
    expect(log.gpuDevices).toEqual([
      '/job:localhost/replica:0/task:0/device:GPU:0 (NVIDIA GeForce RTX 4090)',
    ]);
    expect(explainTfGpuLog(log)).toBeNull();
  });

  it('silent CPU fallback when cuDNN is missing', () => {
    const log = parseTfGpuLog(read('tf-log/gpu-missing-cudnn.log'));
    expect(log).toMatchObject({ gpuDevices: [], missingLibraries: ['libcudnn.so.8'], skippedGpu: true });
    expect(explainTfGpuLog(log)).toMatch(/libcudnn\.so\.8.*fell back to the CPU.*libcudnn8/);
  });

  it('cuInit failure', () => {
    const log = parseTfGpuLog(read('tf-log/no-device.log'));
    expect(log.cuInitError).toMatch(/^CUDA_ERROR_NO_DEVICE/);
    expect(explainTfGpuLog(log)).toMatch(/cuInit failed/);
  });
});
