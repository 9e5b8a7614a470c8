// The float32 ceiling of a WebGPU adapter, measured rather than assumed: a compute shader runs
// independent chains of vec4 fused multiply-adds (8 FLOP each) with nothing read or written in the loop,
// so the figure is what the adapter's ALUs do when nothing waits on memory. A matmul kernel's share of it
// says how much is left on the table (on llvmpipe it is the CPU's SIMD units as Mesa's JIT drives them).

/** The parts of the WebGPU API this measurement uses (the `webgpu` package's full types stay optional). */
interface GpuBufferLike {
  destroy(): void;
}
interface GpuDeviceLike {
  readonly queue: {
    submit(buffers: unknown[]): void;
    writeBuffer(buffer: GpuBufferLike, offset: number, data: ArrayBufferView): void;
    onSubmittedWorkDone(): Promise<void>;
  };
  createShaderModule(d: { code: string }): unknown;
  createComputePipeline(d: { layout: 'auto'; compute: { module: unknown; entryPoint: string } }): {
    getBindGroupLayout(i: number): unknown;
  };
  createBuffer(d: { size: number; usage: number }): GpuBufferLike;
  createBindGroup(d: {
    layout: unknown;
    entries: { binding: number; resource: { buffer: GpuBufferLike } }[];
  }): unknown;
  createCommandEncoder(): {
    beginComputePass(): {
      setPipeline(p: unknown): void;
      setBindGroup(i: number, g: unknown): void;
      dispatchWorkgroups(x: number): void;
      end(): void;
    };
    finish(): unknown;
  };
}

/** GPUBufferUsage bits (the same on every implementation). */
const STORAGE = 0x80;
const UNIFORM = 0x40;
const COPY_DST = 0x08;

/** Chains of vec4 FMAs tried: enough independent work to hide each FMA's latency, not so much it spills. */
export const WEBGPU_CEILING_CHAINS: readonly number[] = [4, 8, 12];
const WORKGROUP = 64;

/** The WGSL of a ceiling kernel with `chains` independent vec4 FMA chains per invocation. */
export function webgpuCeilingSource(chains: number): string {
  const decl: string[] = [];
  const body: string[] = [];
  const sum: string[] = [];
  for (let c = 0; c < chains; c++) {
    decl.push(`var a${c} = vec4<f32>(f32(i) * 1e-9 + ${c}.0 * 1e-3);`);
    body.push(`a${c} = fma(a${c}, m, k);`);
    sum.push(`a${c}`);
  }
  return `
@group(0) @binding(0) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(1) var<uniform> p: vec4<f32>;
@compute @workgroup_size(${WORKGROUP})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  let m = vec4<f32>(p.x);
  let k = vec4<f32>(p.y);
  ${decl.join('\n  ')}
  for (var t = 0u; t < u32(p.z); t = t + 1u) {
    ${body.join('\n    ')}
  }
  out[i] = ${sum.join(' + ')};
}`;
}

export interface WebgpuCeiling {
  /** Best GFLOP/s over the chain counts and rounds. */
  readonly gflops: number;
  readonly chains: number;
  /** Best GFLOP/s of each chain count. */
  readonly byChains: readonly { readonly chains: number; readonly gflops: number }[];
}

/**
 * Measures the FMA ceiling of `device`: for each chain count, `rounds` dispatches of `workgroups` × 64
 * invocations running `iterations` loop turns, timed from submit to onSubmittedWorkDone; the best.
 */
export async function measureWebgpuCeiling(
  device: GpuDeviceLike,
  options: { workgroups?: number; iterations?: number; rounds?: number } = {},
): Promise<WebgpuCeiling> {
  const workgroups = options.workgroups ?? 256;
  const iterations = options.iterations ?? 2048;
  const rounds = options.rounds ?? 5;
  const out = device.createBuffer({ size: workgroups * WORKGROUP * 16, usage: STORAGE });
  const params = device.createBuffer({ size: 16, usage: UNIFORM | COPY_DST });
  device.queue.writeBuffer(params, 0, new Float32Array([0.999, 1e-4, iterations, 0]));
  const byChains: { chains: number; gflops: number }[] = [];
  try {
    for (const chains of WEBGPU_CEILING_CHAINS) {
      const pipeline = device.createComputePipeline({
        layout: 'auto',
        compute: {
          module: device.createShaderModule({ code: webgpuCeilingSource(chains) }),
          entryPoint: 'main',
        },
      });
      const group = device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [
          { binding: 0, resource: { buffer: out } },
          { binding: 1, resource: { buffer: params } },
        ],
      });
      const once = async (): Promise<number> => {
        const encoder = device.createCommandEncoder();
        const pass = encoder.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, group);
        pass.dispatchWorkgroups(workgroups);
        pass.end();
        const started = performance.now();
        device.queue.submit([encoder.finish()]);
        await device.queue.onSubmittedWorkDone();
        return performance.now() - started;
      };
      await once(); // compiles
      let best = Number.POSITIVE_INFINITY;
      for (let r = 0; r < rounds; r++) best = Math.min(best, await once());
      const flops = workgroups * WORKGROUP * iterations * chains * 8;
      byChains.push({ chains, gflops: flops / best / 1e6 });
    }
  } finally {
    out.destroy();
    params.destroy();
  }
  const best = byChains.reduce((a, b) => (b.gflops > a.gflops ? b : a));
  return { gflops: best.gflops, chains: best.chains, byChains };
}
