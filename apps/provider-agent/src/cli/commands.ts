import { readFile } from 'node:fs/promises';
import { pino } from 'pino';
import { BACKENDS, type Backend } from '#protocol';
import {
  agentPaths,
  readAgentConfig,
  writeAgentConfig,
  type AgentConfig,
  type AgentConfigInput,
} from '../agent-config.js';
import { createKeystore, readKeystore, unlockKeystore, writeKeystore } from '../keystore.js';
import { detectGpus, resolveBackend, runMatmulBenchmark } from '../runtime/index.js';
import { startAgent, type AgentStatus } from '../daemon/agent.js';
import { CliError, type Output } from './output.js';
import { readPassphrase } from './passphrase.js';

export interface CommonOptions {
  dataDir: string;
  json: boolean;
  env: NodeJS.ProcessEnv;
}

interface NetworkBody {
  protocolVersion: number;
  peers: { peerId: string; multiaddrs: string[]; signerAddress: string }[];
}

async function fetchNetwork(coordinatorUrl: string): Promise<NetworkBody> {
  let response: Response;
  try {
    response = await fetch(new URL('/v1/network', coordinatorUrl), { signal: AbortSignal.timeout(10_000) });
  } catch (err) {
    throw new CliError(`cannot reach the coordinator at ${coordinatorUrl}: ${(err as Error).message}`);
  }
  if (!response.ok) throw new CliError(`${coordinatorUrl}/v1/network answered ${response.status}`);
  const body = (await response.json()) as NetworkBody;
  if (!Array.isArray(body.peers) || body.peers.length === 0) {
    throw new CliError(
      `the coordinator at ${coordinatorUrl} has no p2p worker online yet; try again shortly`,
    );
  }
  return body;
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
  const network = await fetchNetwork(opts.coordinator);
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
    ...(parseBackend(opts.backend) ? { backend: parseBackend(opts.backend) } : {}),
  };
  await writeAgentConfig(paths.config, config);
  out.result(
    { peerId: identity.peerId, address: identity.address, keystore: paths.keystore, config: paths.config },
    () =>
      [
        `created a provider identity`,
        `  peer id   ${identity.peerId}`,
        `  address   ${identity.address}   (payouts go here)`,
        `  keystore  ${paths.keystore}`,
        `  config    ${paths.config}`,
        `next: gpumesh-agent doctor, then gpumesh-agent benchmark, then gpumesh-agent start`,
      ].join('\n'),
  );
}

export async function doctorCommand(
  opts: CommonOptions & { backend?: string },
  out: Output,
): Promise<number> {
  const gpus = await detectGpus();
  out.line(`GPUs: ${gpus.message}`);
  if (gpus.hint) out.line(`  hint: ${gpus.hint}`);
  for (const gpu of gpus.gpus)
    out.line(`  #${gpu.index} ${gpu.model} ${gpu.vramMiB} MiB (compute ${gpu.computeCapability ?? '?'})`);
  const report = await resolveBackend({ force: parseBackend(opts.backend), env: opts.env, gpus });
  out.result({ gpus, backend: report }, () => {
    const lines = [
      `backend: ${report.name} ${report.version}${report.matmulKernel ? ` (matmul kernel: ${report.matmulKernel})` : ''} — ${report.proven ? 'proven' : 'NOT proven'} at ${report.gflops.toFixed(1)} GFLOP/s`,
    ];
    for (const f of report.fallbacks) lines.push(`  skipped ${f.name}: ${f.reason}`);
    for (const w of report.warnings) lines.push(`  warning: ${w}`);
    return lines.join('\n');
  });
  return report.proven ? 0 : 1;
}

export async function benchmarkCommand(
  opts: CommonOptions & { backend?: string },
  out: Output,
): Promise<void> {
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
  if (config) await writeAgentConfig(paths.config, { ...config, benchmarkGflops: result.bestGflops });
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

/**
 * Refreshes the coordinator's multiaddrs from its REST API (they change when it moves or restarts);
 * refuses a coordinator whose offer signer is not the one this agent was set up to trust.
 */
async function refreshBootstrap(
  config: AgentConfig,
  paths: ReturnType<typeof agentPaths>,
  urlChanged = false,
): Promise<AgentConfig> {
  let network: NetworkBody;
  try {
    network = await fetchNetwork(config.coordinatorUrl);
  } catch (err) {
    // A URL given on the command line must answer; otherwise (offline) the saved multiaddrs are kept
    // and libp2p keeps redialling them.
    if (urlChanged) throw err;
    return config;
  }
  const trusted = network.peers.filter((p) => p.signerAddress === config.coordinatorAddress);
  if (trusted.length === 0) {
    throw new CliError(
      `the coordinator at ${config.coordinatorUrl} now signs offers as ${network.peers[0].signerAddress}, ` +
        `not ${config.coordinatorAddress}; if you trust it, run init again with --force`,
    );
  }
  const bootstrap = trusted.flatMap((p) => p.multiaddrs);
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

export async function startCommand(
  opts: CommonOptions & { logLevel: string; coordinatorUrl?: string },
): Promise<void> {
  const paths = agentPaths(opts.dataDir);
  const saved = await readAgentConfig(paths.config);
  // A coordinator that moved: its new URL is kept, and refreshBootstrap still checks its offer signer.
  const moved = opts.coordinatorUrl !== undefined && opts.coordinatorUrl !== saved.coordinatorUrl;
  const config = await refreshBootstrap(
    moved ? { ...saved, coordinatorUrl: httpUrl(opts.coordinatorUrl as string) } : saved,
    paths,
    moved,
  );
  const passphrase = await readPassphrase(opts.env, false);
  const identity = await unlockKeystore(await readKeystore(paths.keystore), passphrase);
  const logger = pino({ level: opts.logLevel, base: { service: 'provider-agent', peerId: identity.peerId } });
  const agent = await startAgent({ config, identity, paths, logger });
  process.stdout.write(
    `gpumesh-agent ready: peer ${agent.peerId} address ${agent.address} backend ${agent.backend} price ${config.pricePerUnit}\n`,
  );
  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      logger.info('stopping');
      agent
        .stop()
        .catch((err: unknown) => logger.error({ err }, 'error while stopping'))
        .finally(resolve);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    // Agents started by `npm start` (GPUMESH_AGENT_EXIT_WITH_PARENT=1) stop when the coordinator that
    // started them is gone, even if it was killed without a chance to stop them.
    if (opts.env.GPUMESH_AGENT_EXIT_WITH_PARENT === '1') {
      const parent = process.ppid;
      setInterval(() => {
        if (process.ppid === parent) return;
        logger.warn({ parent }, 'the process that started this agent exited');
        stop();
      }, 1_000).unref();
    }
  });
}

export async function statusCommand(opts: CommonOptions, out: Output): Promise<void> {
  const paths = agentPaths(opts.dataDir);
  let status: AgentStatus;
  try {
    status = JSON.parse(await readFile(paths.status, 'utf8')) as AgentStatus;
  } catch {
    throw new CliError(`no status at ${paths.status}: is the agent started (gpumesh-agent start)?`);
  }
  const ageMs = Date.now() - status.updatedAt;
  const alive = ageMs < 10_000;
  out.result({ ...status, alive }, () =>
    [
      `agent ${alive ? 'running' : `not running (last seen ${Math.round(ageMs / 1000)} s ago)`}`,
      `  peer id      ${status.peerId}`,
      `  address      ${status.address}`,
      `  backend      ${status.backend} (${status.gflops.toFixed(1)} GFLOP/s, ${status.slots} slots)`,
      `  coordinator  ${status.coordinatorConnected ? 'connected' : 'not connected'}; ${status.peers.length} peer(s)`,
      `  jobs         ${status.running} running, ${status.completed} done, ${status.failed} failed`,
      `  earnings     ${status.earned} base units reported (credited once verified; paid at each epoch)`,
    ].join('\n'),
  );
}
