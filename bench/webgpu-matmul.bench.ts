// WebGPU matmul benchmark: the adapter's float32 FMA ceiling (a WGSL kernel of independent vec4 FMA
// chains, libs/compute/src/webgpu-ceiling.ts) beside float32 matmul GFLOP/s at 512², 768² and 1024²
// with tfjs-backend-webgpu's own kernels and with gpumesh's WGSL kernel (webgpu-matmul.ts), in one run
// on one device, alternating kernels size by size; each product's sampled entries are checked against
// float64 sums. Here the adapter is Mesa's llvmpipe (software, through Dawn's OpenGL ES backend).
//   npx tsc -b tsconfig.build.json && EGL_PLATFORM=surfaceless node dist/bench/webgpu-matmul.bench.js
//   (or npm run bench -- --only webgpu-matmul)
import { loadTf, measureWebgpuCeiling, seededValues, useWebgpuMatmulKernel, type Tf } from '@gpumesh/compute';
import { loadavg } from 'node:os';
import { pathToFileURL } from 'node:url';

type Kernel = 'tfjs' | 'gpumesh';
const SIZES = [512, 768, 1024];
/** Matmuls timed per size and kernel (queued back to back, one readback of one element at the end). */
const ITERATIONS = 3;
const ROUNDS = 3;

/** Max relative error of 64 sampled entries of a·b against float64 sums. */
function sampledError(c: Float32Array, a: Float32Array, b: Float32Array, n: number): number {
  let worst = 0;
  for (let s = 0; s < 64; s++) {
    const i = (s * 7919) % n;
    const j = (s * 104_729) % n;
    let want = 0;
    for (let p = 0; p < n; p++) want += a[i * n + p] * b[p * n + j];
    worst = Math.max(worst, Math.abs(c[i * n + j] - want) / (1 + Math.abs(want)));
  }
  return worst;
}

async function timeKernel(tf: Tf, kernel: Kernel, n: number, a: Float32Array, b: Float32Array) {
  useWebgpuMatmulKernel(tf, kernel);
  const ta = tf.tensor2d(a, [n, n]);
  const tb = tf.tensor2d(b, [n, n]);
  try {
    const warm = tf.matMul(ta, tb);
    const error = sampledError((await warm.data()) as Float32Array, a, b, n);
    warm.dispose();
    let best = Number.POSITIVE_INFINITY;
    for (let r = 0; r < ROUNDS; r++) {
      const started = performance.now();
      const products = Array.from({ length: ITERATIONS }, () => tf.matMul(ta, tb));
      const corner = products[ITERATIONS - 1].slice([0, 0], [1, 1]);
      await corner.data();
      const ms = (performance.now() - started) / ITERATIONS;
      corner.dispose();
      for (const p of products) p.dispose();
      best = Math.min(best, ms);
    }
    return {
      ms: Math.round(best * 10) / 10,
      gflops: Math.round((2 * n ** 3) / best / 1e5) / 10,
      maxRelError: error,
    };
  } finally {
    ta.dispose();
    tb.dispose();
  }
}

export async function run(): Promise<Record<string, unknown>> {
  const loaded = await loadTf('webgpu');
  const tf = loaded.tf;
  const device = (tf.backend() as unknown as { device: Parameters<typeof measureWebgpuCeiling>[0] }).device;
  const loadBefore = loadavg()[0];
  const ceiling = await measureWebgpuCeiling(device);
  const sizes: Record<string, unknown>[] = [];
  for (const n of SIZES) {
    const a = Float32Array.from(seededValues(n * n, 1));
    const b = Float32Array.from(seededValues(n * n, 2));
    const tfjs = await timeKernel(tf, 'tfjs', n, a, b);
    const gpumesh = await timeKernel(tf, 'gpumesh', n, a, b);
    sizes.push({
      n,
      tfjs,
      gpumesh,
      ratio: Math.round((gpumesh.gflops / tfjs.gflops) * 100) / 100,
      tfjsShareOfCeiling: Math.round((tfjs.gflops / ceiling.gflops) * 1000) / 1000,
      gpumeshShareOfCeiling: Math.round((gpumesh.gflops / ceiling.gflops) * 1000) / 1000,
    });
  }
  useWebgpuMatmulKernel(tf, loaded.webgpuMatmulKernel ?? 'tfjs');
  return {
    adapter: loaded.adapter,
    kernelByDefault: loaded.webgpuMatmulKernel,
    ceiling: {
      gflops: Math.round(ceiling.gflops * 10) / 10,
      chains: ceiling.chains,
      byChains: ceiling.byChains.map((c) => ({ chains: c.chains, gflops: Math.round(c.gflops * 10) / 10 })),
    },
    sizes,
    loadAverage1m: { before: loadBefore, after: loadavg()[0] },
    measuredAt: new Date().toISOString(),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  run()
    .then((figures) => {
      console.log(JSON.stringify(figures, null, 2));
      process.exit(0); // Dawn's instance keeps the loop alive
    })
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
}
