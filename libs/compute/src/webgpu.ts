// WebGPU through Dawn's Node bindings (npm `webgpu`): picks an adapter, says what it is (a real GPU or a
// software rasteriser such as Mesa's llvmpipe), and hands it to tfjs-backend-webgpu. Dawn's default
// backend (Vulkan, Metal, D3D12) is tried first, then its OpenGL ES backend, which needs the
// 'compatibility' feature level and is how Mesa's software renderer is reached on a GPU-less host.

/** What Dawn says about an adapter (GPUAdapterInfo). */
export interface WebgpuAdapterInfo {
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
  /** Dawn backend that opened it: 'default' (Vulkan/Metal/D3D12) or 'opengles'. */
  readonly dawnBackend: WebgpuDawnBackend;
  /** A software rasteriser (llvmpipe, lavapipe, SwiftShader, Microsoft Basic Render, a fallback adapter). */
  readonly software: boolean;
  /** The adapter's maxBufferSize limit in bytes: the largest buffer it allocates (not its VRAM). */
  readonly maxBufferBytes?: number;
}

export type WebgpuDawnBackend = 'default' | 'opengles';

/** One way of asking Dawn for an adapter, and what came of it. */
export interface WebgpuAttempt {
  readonly dawnBackend: WebgpuDawnBackend;
  readonly ok: boolean;
  /** The adapter's description, or why there was none. */
  readonly reason: string;
}

/** The subset of the WebGPU API used here (the `webgpu` package's full types stay optional). */
interface GpuAdapterLike {
  readonly info?: {
    readonly vendor?: string;
    readonly architecture?: string;
    readonly device?: string;
    readonly description?: string;
    readonly isFallbackAdapter?: boolean;
  };
  readonly isFallbackAdapter?: boolean;
  readonly limits?: { readonly maxBufferSize?: number };
}

interface GpuLike {
  requestAdapter(options?: Record<string, unknown>): Promise<GpuAdapterLike | null>;
}

interface DawnModule {
  create(flags: string[]): GpuLike;
  /** GPUBufferUsage, GPUMapMode… which tfjs-backend-webgpu reads as globals. */
  readonly globals: Record<string, unknown>;
}

const WAYS: readonly {
  dawnBackend: WebgpuDawnBackend;
  flags: string[];
  options: Record<string, unknown>;
}[] = [
  { dawnBackend: 'default', flags: [], options: { powerPreference: 'high-performance' } },
  { dawnBackend: 'opengles', flags: ['backend=opengles'], options: { featureLevel: 'compatibility' } },
];

/** Names of software adapters, as they appear in vendor, architecture, device or description. */
const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|softpipe|swiftshader|microsoft basic render|\bwarp\b/i;

/** True when the adapter renders in software on the CPU (never advertised as a GPU). */
export function isSoftwareAdapter(
  info: Pick<WebgpuAdapterInfo, 'vendor' | 'architecture' | 'device' | 'description'>,
  isFallbackAdapter = false,
): boolean {
  if (isFallbackAdapter) return true;
  return SOFTWARE_ADAPTER.test([info.vendor, info.architecture, info.device, info.description].join(' '));
}

/** One line naming the adapter, e.g. "llvmpipe-llvm-15… (OpenGL ES 3.2 Mesa 22.3.6) via opengles, software". */
export function describeWebgpuAdapter(info: WebgpuAdapterInfo): string {
  const name = [info.vendor, info.architecture, info.device].filter((s) => s !== '').join(' ') || 'unnamed';
  const desc = info.description === '' ? '' : ` (${info.description})`;
  return `${name}${desc} via ${info.dawnBackend}${info.software ? ', software' : ''}`;
}

/**
 * Mesa's EGL needs a platform on a host without a display; 'surfaceless' renders off-screen. Set only
 * when the operator did not choose one. Must run before Dawn opens the OpenGL ES backend.
 */
export function ensureEglPlatform(env: NodeJS.ProcessEnv = process.env): void {
  env.EGL_PLATFORM ??= 'surfaceless';
}

export interface WebgpuAdapterChoice {
  readonly gpu: GpuLike;
  readonly adapter: GpuAdapterLike;
  readonly info: WebgpuAdapterInfo;
  readonly attempts: readonly WebgpuAttempt[];
  readonly globals: Record<string, unknown>;
}

async function importDawn(): Promise<DawnModule> {
  const specifier: string = 'webgpu'; // optional dependency: not required at compile time
  const mod = (await import(specifier)) as DawnModule & { default?: DawnModule };
  return typeof mod.create === 'function' ? mod : (mod.default as DawnModule);
}

/**
 * Asks Dawn for an adapter, default backend first, then OpenGL ES. Returns the first adapter found with
 * every attempt made; throws (listing the attempts) when there is none. `adapterName` picks the first
 * adapter whose device name contains it (dawn.node's `adapter=` flag), for one executor per adapter.
 */
export async function requestWebgpuAdapter(
  options: { readonly adapterName?: string } = {},
): Promise<WebgpuAdapterChoice> {
  ensureEglPlatform();
  const dawn = await importDawn();
  const attempts: WebgpuAttempt[] = [];
  const pick = options.adapterName === undefined ? [] : [`adapter=${options.adapterName}`];
  for (const way of WAYS) {
    try {
      const gpu = dawn.create([...way.flags, ...pick]);
      const adapter = await gpu.requestAdapter(way.options);
      if (adapter === null) {
        attempts.push({ dawnBackend: way.dawnBackend, ok: false, reason: 'no adapter' });
        continue;
      }
      const raw = adapter.info ?? {};
      const fields = {
        vendor: raw.vendor ?? '',
        architecture: raw.architecture ?? '',
        device: raw.device ?? '',
        description: raw.description ?? '',
      };
      const fallback = raw.isFallbackAdapter ?? adapter.isFallbackAdapter ?? false;
      const maxBufferBytes = adapter.limits?.maxBufferSize;
      const info: WebgpuAdapterInfo = {
        ...fields,
        dawnBackend: way.dawnBackend,
        software: isSoftwareAdapter(fields, fallback),
        ...(typeof maxBufferBytes === 'number' && maxBufferBytes > 0 ? { maxBufferBytes } : {}),
      };
      attempts.push({ dawnBackend: way.dawnBackend, ok: true, reason: describeWebgpuAdapter(info) });
      return { gpu, adapter, info, attempts, globals: dawn.globals };
    } catch (err) {
      attempts.push({
        dawnBackend: way.dawnBackend,
        ok: false,
        reason: err instanceof Error ? err.message : String(err),
      });
    }
  }
  throw new Error(`no WebGPU adapter: ${attempts.map((a) => `${a.dawnBackend}: ${a.reason}`).join('; ')}`);
}

/**
 * Makes `navigator.gpu` hand out `adapter` (tfjs-backend-webgpu asks `navigator.gpu.requestAdapter()`
 * without the feature level the OpenGL ES backend needs) and defines the WebGPU constants it reads as
 * globals (GPUBufferUsage…). Call before importing the tfjs backend.
 */
export function installNavigatorGpu(choice: WebgpuAdapterChoice): void {
  const gpu = {
    requestAdapter: (): Promise<GpuAdapterLike> => Promise.resolve(choice.adapter),
    getPreferredCanvasFormat: (): string => 'rgba8unorm',
  };
  const g = globalThis as { navigator?: object } & Record<string, unknown>;
  for (const [name, value] of Object.entries(choice.globals)) g[name] ??= value;
  if (g.navigator !== undefined) {
    Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true, writable: true });
  } else {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  }
}

/** One adapter Dawn lists for a backend. */
export interface DawnAdapterListing {
  /** Dawn's backend name: 'vulkan', 'metal', 'd3d12', 'opengles'… */
  readonly backend: string;
  readonly name: string;
}

/**
 * The adapters in dawn.node's answer to an adapter name it does not have ("no adapter with backend 'x'
 * and name 'y' found\nAvailable adapters:\n * backend: 'opengles', name: 'llvmpipe (…)'"): the only
 * way 0.6.2 enumerates them.
 */
export function parseDawnAdapterList(message: string): DawnAdapterListing[] {
  const list: DawnAdapterListing[] = [];
  for (const m of message.matchAll(/^\s*\*\s*backend:\s*'([^']*)',\s*name:\s*'([^']*)'/gm)) {
    list.push({ backend: m[1], name: m[2] });
  }
  return list;
}

/** Dawn's native backend on this platform (what 'default' means). */
export function nativeDawnBackend(platform: NodeJS.Platform = process.platform): string {
  return platform === 'darwin' ? 'metal' : platform === 'win32' ? 'd3d12' : 'vulkan';
}

const NO_SUCH_ADAPTER = '__gpumesh_list_adapters__';

/**
 * Every adapter Dawn offers on `dawnBackend` ('default': the platform's native one), by asking for one
 * that does not exist. Empty when the backend has none or Dawn cannot be loaded.
 */
export async function listWebgpuAdapters(
  dawnBackend: WebgpuDawnBackend = 'default',
): Promise<DawnAdapterListing[]> {
  ensureEglPlatform();
  const backend = dawnBackend === 'default' ? nativeDawnBackend() : 'opengles';
  const way = WAYS.find((w) => w.dawnBackend === dawnBackend) ?? WAYS[0];
  try {
    const dawn = await importDawn();
    const gpu = dawn.create([`backend=${backend}`, `adapter=${NO_SUCH_ADAPTER}`]);
    await gpu.requestAdapter(way.options);
    return [];
  } catch (err) {
    return parseDawnAdapterList(err instanceof Error ? err.message : String(err));
  }
}
