import { readFile } from 'node:fs/promises';
import { pino } from 'pino';
import { BACKENDS, type Backend } from '@gpumesh/protocol';
import {
  agentPaths,
  readAgentConfig,
  writeAgentConfig,
  type AgentConfig,
  type AgentConfigInput,
} from '../agent-config.js';
import { createKeystore, readKeystore, unlockKeystore, writeKeystore } from '../keystore.js';
import {
  BackendUnavailableError,
  backendFromEnv,
  detectGpus,
  gpuUseVerdict,
  resolveBackend,
  runMatmulBenchmark,
  runSweepBenchmark,
  type BackendReport,
  type GpuDetection,
  type ResolveBackendOptions,
  describeWebgpuAdapter,
  requestWebgpuAdapter,
  resolvePackage,
  type WebgpuAdapterInfo,
  type WebgpuAttempt,
} from '../runtime/index.js';
import { startAgent, type AgentStatus } from '../daemon/agent.js';
import {
  fetchCoordinatorNetwork,
  trustedMultiaddrs,
  type CoordinatorNetwork,
} from '../daemon/coordinator-directory.js';
import { acquireInstanceLock, InstanceLockError } from '../daemon/instance-lock.js';
import { agentVersion } from '../version.js';
import { CliError, type Output } from './output.js';
import { readPassphrase } from './passphrase.js';
import { sweepSizes } from './gpu-check-command.js';

export interface CommonOptions {
  dataDir: string;
  json: boolean;
  env: NodeJS.ProcessEnv;
}

async function fetchNetwork(coordinatorUrl: string): Promise<CoordinatorNetwork> {
  try {
    return await fetchCoordinatorNetwork(coordinatorUrl);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}

/** What `GET /v1/market` answers (apps/coordinator/src/providers/market.service.ts). */
export interface MarketBody {
  providers: number;
  min: string | null;
  median: string | null;
  max: string | null;
  feeBps: number;
}

/** The market's live price range, or an error string (init goes on without it). */
async function fetchMarket(coordinatorUrl: string): Promise<MarketBody | { error: string }> {
  try {
    const response = await fetch(new URL('/v1/market', coordinatorUrl), {
      signal: AbortSignal.timeout(10_000),
    });
    if (!response.ok) return { error: `${coordinatorUrl}/v1/market answered ${response.status}` };
    return (await response.json()) as MarketBody;
  } catch (err) {
    return { error: (err as Error).message };
  }
}

export function marketLine(market: MarketBody | { error: string }, price: string): string {
  if ('error' in market) return `price range unknown (${market.error})`;
  const fee = `the platform keeps ${(market.feeBps / 100).toFixed(2)}% of each payment`;
  if (market.providers === 0 || market.min === null || market.max === null) {
    return `no provider is live right now; ${fee}`;
  }
  const p = BigInt(price);
  const where =
    p < BigInt(market.min)
      ? 'below every live provider'
      : p > BigInt(market.max)
        ? 'above every live provider (jobs whose max price is lower skip you)'
        : 'inside the live range';
  return `${market.providers} live provider(s) charge ${market.min} (min) / ${market.median} (median) / ${market.max} (max); yours is ${where}; ${fee}`;
}

function parseBackend(value: string | undefined): Backend | undefined {
  if (value === undefined || value === 'auto') return undefined;
  if (!(BACKENDS as readonly string[]).includes(value)) {
    throw new CliError(`--backend must be one of auto, ${BACKENDS.join(', ')}`);
  }
  return value as Backend;
}

export async function initCommand(
  opts: CommonOptions & {
    coordinator: string;
    price: string;
    region?: string;
    slots?: string;
    jobsPerSlot?: string;
    backend?: string;
    tensorCache?: string;
    artifactCache?: string;
    force: boolean;
    lightKdf: boolean;
  },
  out: Output,
): Promise<void> {
  const paths = agentPaths(opts.dataDir);
  if (!/^\d{1,30}$/.test(opts.price))
    throw new CliError('--price must be a whole number of base units per work unit');
  const slots = opts.slots === undefined ? undefined : Number(opts.slots);
  if (slots !== undefined && (!Number.isInteger(slots) || slots < 1 || slots > 256)) {
    throw new CliError('--slots must be an integer from 1 to 256');
  }
  const jobsPerSlot = opts.jobsPerSlot === undefined ? undefined : Number(opts.jobsPerSlot);
  if (jobsPerSlot !== undefined && (!Number.isInteger(jobsPerSlot) || jobsPerSlot < 1 || jobsPerSlot > 64)) {
    throw new CliError('--jobs-per-slot must be an integer from 1 to 64');
  }
  const cacheSizes = parseCacheSizes(opts);
  const network = await fetchNetwork(opts.coordinator);
  const market = await fetchMarket(opts.coordinator);
  const passphrase = await readPassphrase(opts.env, true);
  const { file, identity } = await createKeystore(passphrase, { light: opts.lightKdf });
  await writeKeystore(paths.keystore, file, opts.force);
  const config: AgentConfigInput = {
    version: 1,
    coordinatorUrl: opts.coordinator,
    bootstrap: network.peers.flatMap((p) => p.multiaddrs),
    coordinatorAddress: network.peers[0].signerAddress,
    pricePerUnit: opts.price,
    ...(opts.region ? { region: opts.region } : {}),
    ...(slots ? { slots } : {}),
    ...(jobsPerSlot ? { jobsPerSlot } : {}),
    ...cacheSizes,
    ...(parseBackend(opts.backend) ? { backend: parseBackend(opts.backend) } : {}),
  };
  await writeAgentConfig(paths.config, config);
  out.result(
    {
      peerId: identity.peerId,
      address: identity.address,
      keystore: paths.keystore,
      config: paths.config,
      price: opts.price,
      market,
    },
    () =>
      [
        `created a provider identity`,
        `  peer id   ${identity.peerId}`,
        `  address   ${identity.address}   (payouts go here)`,
        `  keystore  ${paths.keystore}`,
        `  config    ${paths.config}`,
        `  price     ${opts.price} base units per work unit (1 MFLOP)`,
        `  market    ${marketLine(market, opts.price)}`,
        `next: gpumesh-agent doctor, then gpumesh-agent benchmark, then gpumesh-agent start`,
        `(gas, tokens, stake and pricing: docs/provider-guide.md)`,
      ].join('\n'),
  );
}

/** What `doctor` detects and resolves with (injectable: tests drive it with recorded fixtures). */
export interface DoctorDeps {
  detect: () => Promise<GpuDetection>;
  resolve: (opts: ResolveBackendOptions) => Promise<BackendReport>;
  /** Asks Dawn for a WebGPU adapter (default: the real one). */
  webgpu?: () => Promise<WebgpuProbe>;
}

/** What Dawn offers here, whichever backend ends up running jobs. */
export interface WebgpuProbe {
  readonly adapter: WebgpuAdapterInfo | null;
  /** Every way Dawn was asked (default backend, then OpenGL ES) and what came of it. */
  readonly attempts: readonly WebgpuAttempt[];
  readonly error?: string;
}

/** Probes Dawn for a WebGPU adapter without loading tfjs (never throws). */
export async function probeWebgpu(): Promise<WebgpuProbe> {
  if (resolvePackage('webgpu') === null) {
    return { adapter: null, attempts: [], error: 'webgpu (Dawn) is not installed' };
  }
  try {
    const choice = await requestWebgpuAdapter();
    return { adapter: choice.info, attempts: choice.attempts };
  } catch (err) {
    return { adapter: null, attempts: [], error: err instanceof Error ? err.message : String(err) };
  }
}

/** One line a backend tried by `doctor --json`: the one chosen, then those skipped and why. */
export interface BackendTried {
  readonly name: string;
  readonly ok: boolean;
  readonly reason: string;
}

export async function doctorCommand(
  opts: CommonOptions & { backend?: string },
  out: Output,
  deps: DoctorDeps = { detect: () => detectGpus(), resolve: resolveBackend },
): Promise<number> {
  const gpus = await deps.detect();
  out.line(`GPUs: ${gpus.message}`);
  if (gpus.hint) out.line(`  hint: ${gpus.hint}`);
  for (const gpu of gpus.gpus)
    out.line(`  #${gpu.index} ${gpu.model} ${gpu.vramMiB} MiB (compute ${gpu.computeCapability ?? '?'})`);
  const forced = parseBackend(opts.backend) ?? backendFromEnv(opts.env);
  const webgpu = await (deps.webgpu ?? probeWebgpu)();
  let report: BackendReport;
  try {
    report = await deps.resolve({ force: forced, env: opts.env, gpus });
  } catch (err) {
    if (!(err instanceof BackendUnavailableError)) throw err;
    // A forced backend that does not work: still one JSON document, naming it and why.
    const tried: BackendTried[] = [{ name: err.backend, ok: false, reason: err.reason }];
    out.result(
      { gpus, webgpu, backend: null, tried, ok: false },
      () => `backend ${err.backend}: not available: ${err.reason}`,
    );
    return 1;
  }
  const verdict = gpuUseVerdict(gpus, report, forced);
  const tried: BackendTried[] = [
    ...report.fallbacks.map((f) => ({ name: f.name, ok: false, reason: f.reason })),
    {
      name: report.name,
      ok: report.proven,
      reason: `${report.proven ? 'proven' : 'NOT proven'} at ${report.gflops.toFixed(1)} GFLOP/s`,
    },
  ];
  const ok = report.proven && verdict.ok;
  out.result({ gpus, webgpu, backend: report, tried, gpuUse: verdict, ok }, () => {
    const lines = [
      webgpu.adapter
        ? `WebGPU adapter: ${describeWebgpuAdapter(webgpu.adapter)}${webgpu.adapter.software ? ' — not a GPU: advertised as CPU-class' : ''}`
        : `WebGPU: no adapter (${webgpu.error ?? 'unknown'})`,
      `backend: ${report.name} ${report.version}${report.matmulKernel ? ` (matmul kernel: ${report.matmulKernel})` : ''} — ${report.proven ? 'proven' : 'NOT proven'} at ${report.gflops.toFixed(1)} GFLOP/s`,
    ];
    for (const f of report.fallbacks) lines.push(`  skipped ${f.name}: ${f.reason}`);
    for (const w of report.warnings) lines.push(`  warning: ${w}`);
    if (verdict.ok) {
      lines.push(`GPU use: ${verdict.message}`);
      for (const note of verdict.notes ?? []) lines.push(`  - ${note}`);
    } else {
      lines.push(
        '',
        `FAIL [${verdict.code}]: ${verdict.message}`,
        'this box would earn a fraction of what its GPUs can; fix the install:',
        ...verdict.fix.map((f) => `  - ${f}`),
      );
    }
    return lines.join('\n');
  });
  return ok ? 0 : 1;
}

export async function benchmarkCommand(
  opts: CommonOptions & {
    backend?: string;
    sweep?: boolean;
    sizes?: string;
    maxSize?: string;
    maxSeconds?: string;
  },
  out: Output,
): Promise<void> {
  if (opts.sweep === true) {
    await sweepCommand(opts, out);
    return;
  }
  const paths = agentPaths(opts.dataDir);
  let config: AgentConfig | undefined;
  try {
    config = await readAgentConfig(paths.config);
  } catch {
    config = undefined;
  }
  const result = await runMatmulBenchmark({
    backend: parseBackend(opts.backend) ?? config?.backend,
    onProgress: (p) => out.progress(p.done / p.total, `${p.size}² ${p.gflops.toFixed(1)} GFLOP/s`),
  });
  out.done();
  if (config) {
    await writeAgentConfig(paths.config, {
      ...config,
      benchmarkGflops: result.bestGflops,
      benchmarkBackend: result.backend,
    });
  }
  out.result(result, () =>
    [
      `backend ${result.backend}: best ${result.bestGflops.toFixed(1)} GFLOP/s at ${result.bestSize}²`,
      ...result.results.map((r) => `  ${String(r.n).padStart(5)}²  ${r.gflops.toFixed(1)} GFLOP/s`),
      ...(result.ceilingGflops === undefined
        ? []
        : [
            `wasm SIMD ceiling of this core (measured): ${result.ceilingGflops.toFixed(1)} GFLOP/s; ` +
              `the best size reaches ${Math.round((result.ratioOfCeiling ?? 0) * 100)}% of it`,
          ]),
      config
        ? `saved to ${paths.config}; it goes into your adverts`
        : 'no config yet: run `gpumesh-agent init` to keep the figure',
    ].join('\n'),
  );
}

/** `benchmark --sweep`: the gpu-check sweep on one backend (not saved in the config). */
async function sweepCommand(
  opts: CommonOptions & { backend?: string; sizes?: string; maxSize?: string; maxSeconds?: string },
  out: Output,
): Promise<void> {
  const backend = parseBackend(opts.backend) ?? backendFromEnv(opts.env) ?? 'wasm';
  const maxSeconds = opts.maxSeconds === undefined ? 120 : Number(opts.maxSeconds);
  if (!(maxSeconds > 0)) throw new CliError('--max-seconds must be a positive number');
  const sizes = sweepSizes(opts.sizes, opts.maxSize);
  let done = 0;
  const result = await runSweepBenchmark(backend, {
    sizes,
    maxSecondsPerSize: maxSeconds,
    onPoint: (p) =>
      out.progress(
        ++done / sizes.length,
        'gflops' in p
          ? `${p.n}² ${p.gflops.toFixed(1)} GFLOP/s`
          : `${p.n}² ${'failed' in p ? 'failed' : 'skipped'}`,
      ),
  });
  out.done();
  out.result(result, () =>
    [
      `backend ${result.backend} ${result.version}${result.adapter ? ` on ${describeWebgpuAdapter(result.adapter)}` : ''}`,
      ...result.points.map((p) =>
        'gflops' in p
          ? `  ${String(p.n).padStart(5)}²  ${p.gflops.toFixed(1).padStart(9)} GFLOP/s  check ${p.check.ok ? 'ok' : 'FAILED'} (relative error ${p.check.relError.toExponential(1)})`
          : 'failed' in p
            ? `  ${String(p.n).padStart(5)}²  could not run: ${p.failed}`
            : `  ${String(p.n).padStart(5)}²  skipped: ${p.skipped}`,
      ),
      result.bestGflops === null
        ? 'no size passed its check'
        : `best ${result.bestGflops.toFixed(1)} GFLOP/s at ${result.bestSize}²`,
    ].join('\n'),
  );
  if (!result.allChecked) throw new CliError(`${backend}: a product failed its float64 check`);
}

/**
 * Refreshes the coordinator's multiaddrs from its REST API (they change when it moves or restarts);
 * refuses a coordinator whose offer signer is not the one this agent was set up to trust.
 */
async function refreshBootstrap(
  config: AgentConfig,
  paths: ReturnType<typeof agentPaths>,
  urlChanged = false,
): Promise<AgentConfig> {
  let network: CoordinatorNetwork;
  try {
    network = await fetchNetwork(config.coordinatorUrl);
  } catch (err) {
    // A URL given on the command line must answer; otherwise (offline) the saved multiaddrs are kept
    // and libp2p keeps redialling them.
    if (urlChanged) throw err;
    return config;
  }
  const bootstrap = trustedMultiaddrs(network, config.coordinatorAddress);
  if (bootstrap.length === 0) {
    throw new CliError(
      `the coordinator at ${config.coordinatorUrl} now signs offers as ${network.peers[0].signerAddress}, ` +
        `not ${config.coordinatorAddress}; if you trust it, run init again with --force`,
    );
  }
  if (!urlChanged && bootstrap.join() === config.bootstrap.join()) return config;
  const updated = { ...config, bootstrap };
  await writeAgentConfig(paths.config, updated);
  return updated;
}

/** An http(s) URL, or a CliError naming the flag. */
function httpUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new CliError(`--coordinator: not a URL: ${value}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new CliError(`--coordinator: expected an http(s) URL, got ${value}`);
  }
  return value;
}

/** Exit code of an agent that gave up after `maxDisconnectedSeconds` without its coordinator (EX_UNAVAILABLE). */
export const EXIT_COORDINATOR_UNREACHABLE = 69;

/** `--max-disconnected <seconds>`: a whole number of seconds, 0 = never exit. */
export function parseMaxDisconnected(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d{1,9}$/.test(value) || !Number.isSafeInteger(n)) {
    throw new CliError('--max-disconnected must be a whole number of seconds (0 = never exit)');
  }
  return n;
}

const BYTE_UNITS: Record<string, number> = { '': 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40 };

/** A cache size option (`flag`): bytes, or a whole number of KiB, MiB, GiB or TiB; 0 = no cache. */
function parseCacheSize(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^(\d{1,15})\s*(KiB|MiB|GiB|TiB)?$/.exec(value);
  const bytes = m ? Number(m[1]) * BYTE_UNITS[m[2] ?? ''] : Number.NaN;
  if (!Number.isSafeInteger(bytes)) {
    throw new CliError(`${flag} must be a size such as 0, 512MiB, 4GiB or a number of bytes`);
  }
  return bytes;
}

/** `--tensor-cache <size>`: the tensor cache's budget. */
export function parseTensorCache(value: string | undefined): number | undefined {
  return parseCacheSize('--tensor-cache', value);
}

/** `--artifact-cache <size>`: the model artifact cache's budget. */
export function parseArtifactCache(value: string | undefined): number | undefined {
  return parseCacheSize('--artifact-cache', value);
}

/** The cache budgets `--tensor-cache` and `--artifact-cache` give (only those given), for agent.json. */
export function parseCacheSizes(opts: {
  tensorCache?: string;
  artifactCache?: string;
}): Partial<Pick<AgentConfig, 'tensorCacheBytes' | 'artifactCacheBytes'>> {
  const tensorCacheBytes = parseTensorCache(opts.tensorCache);
  const artifactCacheBytes = parseArtifactCache(opts.artifactCache);
  return {
    ...(tensorCacheBytes !== undefined ? { tensorCacheBytes } : {}),
    ...(artifactCacheBytes !== undefined ? { artifactCacheBytes } : {}),
  };
}

/** `bytes` for people: 512 B, 1.5 MiB, 4.0 GiB. */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

export function tensorCacheLine(c: AgentStatus['tensorCache']): string {
  if (c.budgetBytes === 0)
    return `off (tensorCacheBytes 0); ${c.sharedFetches} fetch(es) shared between jobs`;
  return (
    `${c.hits} hit(s), ${c.misses} miss(es), ${c.sharedFetches} shared fetch(es), ${formatBytes(c.bytesSaved)} not transferred; ` +
    `${c.entries} tensor(s), ${formatBytes(c.bytes)} of ${formatBytes(c.budgetBytes)}; ${c.evictions} evicted, ${c.dropped} corrupt dropped`
  );
}

export function artifactCacheLine(c: AgentStatus['artifactCache']): string {
  if (c.budgetBytes === 0) return 'off (artifactCacheBytes 0)';
  return (
    `${c.hits} hit(s), ${c.misses} miss(es), ${formatBytes(c.bytesSaved)} not transferred; ` +
    `${c.entries} model(s), ${formatBytes(c.bytes)} of ${formatBytes(c.budgetBytes)}; ${c.evictions} evicted, ${c.dropped} corrupt dropped`
  );
}

export async function startCommand(
  opts: CommonOptions & {
    logLevel: string;
    coordinatorUrl?: string;
    maxDisconnected?: string;
    tensorCache?: string;
    artifactCache?: string;
  },
): Promise<number> {
  const paths = agentPaths(opts.dataDir);
  const maxDisconnectedSeconds = parseMaxDisconnected(opts.maxDisconnected);
  const cacheSizes = parseCacheSizes(opts);
  const saved = await readAgentConfig(paths.config);
  // One agent per data directory (keystore, journal): a second one is refused before it touches them.
  const lock = await acquireInstanceLock(paths.lock).catch((err: unknown) => {
    throw err instanceof InstanceLockError ? new CliError(err.message) : err;
  });
  try {
    return await runDaemon(opts, paths, saved, {
      ...cacheSizes,
      ...(maxDisconnectedSeconds !== undefined ? { maxDisconnectedSeconds } : {}),
    });
  } finally {
    await lock.release();
  }
}

async function runDaemon(
  opts: CommonOptions & { logLevel: string; coordinatorUrl?: string },
  paths: ReturnType<typeof agentPaths>,
  saved: AgentConfig,
  /** Settings given on the command line for this run only (never written to agent.json). */
  forThisRun: Partial<
    Pick<AgentConfig, 'maxDisconnectedSeconds' | 'tensorCacheBytes' | 'artifactCacheBytes'>
  >,
): Promise<number> {
  // A coordinator that moved: its new URL is kept, and refreshBootstrap still checks its offer signer.
  const moved = opts.coordinatorUrl !== undefined && opts.coordinatorUrl !== saved.coordinatorUrl;
  const refreshed = await refreshBootstrap(
    moved ? { ...saved, coordinatorUrl: httpUrl(opts.coordinatorUrl as string) } : saved,
    paths,
    moved,
  );
  // after refreshBootstrap, which saves the config it is given when the coordinator's addresses changed
  const config = { ...refreshed, ...forThisRun };
  const passphrase = await readPassphrase(opts.env, false);
  const identity = await unlockKeystore(await readKeystore(paths.keystore), passphrase);
  const version = agentVersion();
  const logger = pino({
    level: opts.logLevel,
    base: { service: 'provider-agent', peerId: identity.peerId, version },
  });
  let exitCode = 0;
  let stop: (() => void) | undefined;
  const agent = await startAgent({
    config,
    identity,
    paths,
    logger,
    version,
    onGiveUp: () => {
      exitCode = EXIT_COORDINATOR_UNREACHABLE;
      stop?.();
    },
    onBootstrapChanged: (bootstrap) => {
      // Kept for the next start (a restart under systemd dials the new addresses at once).
      void readAgentConfig(paths.config)
        .then((current) => writeAgentConfig(paths.config, { ...current, bootstrap }))
        .catch((err: unknown) => logger.warn({ err }, 'could not save the new coordinator addresses'));
    },
  });
  process.stdout.write(
    `gpumesh-agent ready: peer ${agent.peerId} address ${agent.address} backend ${agent.backend} price ${config.pricePerUnit} version ${version}\n`,
  );
  await new Promise<void>((resolve) => {
    let stopping = false;
    stop = (): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ exitCode }, 'stopping');
      agent
        .stop()
        .catch((err: unknown) => logger.error({ err }, 'error while stopping'))
        .finally(resolve);
    };
    const onSignal = (): void => stop?.();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    // Agents started by `npm start` (GPUMESH_AGENT_EXIT_WITH_PARENT=1) stop when the coordinator that
    // started them is gone, even if it was killed without a chance to stop them.
    if (opts.env.GPUMESH_AGENT_EXIT_WITH_PARENT === '1') {
      const parent = process.ppid;
      setInterval(() => {
        if (process.ppid === parent) return;
        logger.warn({ parent }, 'the process that started this agent exited');
        stop?.();
      }, 1_000).unref();
    }
  });
  return exitCode;
}

/** How many of the latest jobs `status` lists with their earnings. */
export const STATUS_JOBS_SHOWN = 10;
/** A status file older than this means the agent is not running (it is rewritten every 2 s). */
const STATUS_STALE_MS = 10_000;
const EARNINGS_FETCH_TIMEOUT_MS = 5_000;

/** What `GET /v1/providers/:peerId/earnings` answers (apps/coordinator/src/providers). */
export interface ProviderEarningsBody {
  peerId: string;
  address: string | null;
  feeBps: number;
  totals: { net: string; held: string; pendingEpoch: string; inEpochs: string; reversed: string };
  openEpoch: number | null;
  jobs: {
    jobId: string;
    attempts: number[];
    finishedAt: string | null;
    gross: string;
    fee: string;
    net: string;
    reversed: string;
    state: string;
    epoch: number | null;
    epochState: string | null;
  }[];
}

/** "3 h 2 min", "4 min 5 s", "12 s". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

async function fetchEarnings(
  coordinatorUrl: string,
  peerId: string,
): Promise<
  { ok: true; body: ProviderEarningsBody; url: string } | { ok: false; error: string; url: string }
> {
  const url = new URL(
    `/v1/providers/${encodeURIComponent(peerId)}/earnings?limit=${STATUS_JOBS_SHOWN}`,
    coordinatorUrl,
  );
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(EARNINGS_FETCH_TIMEOUT_MS) });
    if (response.status === 404) return { ok: false, error: 'no earnings yet (no job paid)', url: url.href };
    if (!response.ok) return { ok: false, error: `HTTP ${response.status}`, url: url.href };
    return { ok: true, body: (await response.json()) as ProviderEarningsBody, url: url.href };
  } catch (err) {
    return { ok: false, error: (err as Error).message, url: url.href };
  }
}

function coordinatorLine(status: AgentStatus, now: number): string {
  const link = status.coordinator;
  if (!link) return status.coordinatorConnected ? 'connected' : 'not connected';
  const since = formatDuration(now - link.since);
  if (link.connected) return `connected for ${since} (${link.connectedPeers.length} coordinator peer(s))`;
  const exit =
    link.exitAt === null
      ? 'it keeps redialling (maxDisconnectedSeconds 0)'
      : `it exits for a restart in ${formatDuration(link.exitAt - now)}`;
  return `DISCONNECTED for ${since}: ${link.failedRounds} failed redial round(s)${link.lastError ? `, last error: ${link.lastError}` : ''}; ${exit}`;
}

export async function statusCommand(opts: CommonOptions, out: Output): Promise<void> {
  const paths = agentPaths(opts.dataDir);
  let status: AgentStatus;
  try {
    status = JSON.parse(await readFile(paths.status, 'utf8')) as AgentStatus;
  } catch {
    throw new CliError(`no status at ${paths.status}: is the agent started (gpumesh-agent start)?`);
  }
  const now = Date.now();
  const ageMs = now - status.updatedAt;
  const alive = ageMs < STATUS_STALE_MS;
  const config = await readAgentConfig(paths.config).catch(() => undefined);
  const earnings = config ? await fetchEarnings(config.coordinatorUrl, status.peerId) : undefined;
  out.result(
    { ...status, alive, earnings: earnings?.ok ? earnings.body : { error: earnings?.error ?? 'no config' } },
    () => {
      const lines = [
        `agent ${alive ? `running (pid ${status.pid ?? '?'}, version ${status.version ?? '?'})` : `not running (last seen ${formatDuration(ageMs)} ago)`}`,
        `  peer id      ${status.peerId}`,
        `  address      ${status.address}`,
        `  backend      ${status.backend} (${status.gflops.toFixed(1)} GFLOP/s, ${status.slots} slots)`,
        `  listening    ${status.listening === undefined || status.listening.length === 0 ? 'no (dial-only)' : `${status.listening.join(', ')} (coordinator peers only)`}`,
        `  coordinator  ${coordinatorLine(status, alive ? now : status.updatedAt)}`,
        `  jobs         ${status.running} running, ${status.completed} done, ${status.failed} failed (this run)`,
        `  reported     ${status.reportedAttempts} attempt(s) worth ${status.earned} base units before the platform fee${status.net === undefined ? '' : `, ${status.net} after the fee signed into each offer`}`,
      ];
      // absent from the status file of an agent older than the cache
      if (status.tensorCache !== undefined)
        lines.push(`  tensor cache ${tensorCacheLine(status.tensorCache)}`);
      if (status.artifactCache !== undefined)
        lines.push(`  model cache  ${artifactCacheLine(status.artifactCache)}`);
      if (!earnings?.ok) {
        lines.push(
          `  earnings     unknown: ${earnings?.error ?? 'no config'}${earnings ? ` (${earnings.url})` : ''}`,
        );
        return lines.join('\n');
      }
      const e = earnings.body;
      lines.push(
        `  earnings     ${e.totals.net} base units net, after the ${(e.feeBps / 100).toFixed(2)}% platform fee:`,
        `               ${e.totals.held} held until verified, ${e.totals.pendingEpoch} waiting for epoch ${e.openEpoch ?? '-'}, ${e.totals.inEpochs} in closed epochs (gpumesh-agent claim)` +
          (e.totals.reversed !== '0' ? `, ${e.totals.reversed} reversed` : ''),
      );
      if (e.jobs.length > 0) lines.push(`  latest jobs  (look one up: ${earnings.url.replace(/\?.*$/, '')})`);
      for (const j of e.jobs) {
        const epoch = j.epoch === null ? '' : ` epoch ${j.epoch} ${j.epochState ?? ''}`.trimEnd();
        lines.push(
          `    ${j.jobId} #${j.attempts.join(',') || '?'}  net ${j.net} (gross ${j.gross} − fee ${j.fee})  ${j.state}${epoch}`,
        );
      }
      return lines.join('\n');
    },
  );
}
