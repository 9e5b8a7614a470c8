import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import {
  BACKENDS,
  DEFAULT_INLINE_OUTPUT_BYTES,
  LOWER_CASE_ADDRESS_PATTERN,
  MAX_TENSOR_BYTES,
} from '@gpumesh/protocol';
import {
  DEFAULT_MAX_DISCONNECTED_SECONDS,
  DEFAULT_RECONNECT_INITIAL_DELAY_MS,
  DEFAULT_RECONNECT_MAX_DELAY_MS,
} from './daemon/coordinator-link.js';
import { DEFAULT_ARTIFACT_CACHE_BYTES } from './daemon/artifact-cache.js';
import { DEFAULT_TENSOR_CACHE_BYTES } from './daemon/tensor-cache.js';

/** Where the agent keeps its keystore, config, artifact cache and journal. */
export function defaultDataDir(): string {
  return join(homedir(), '.gpumesh-agent');
}

/** A disk cache's byte budget: one message for every way the value can be wrong (a string, -1, 1.5). */
function cacheBudgetBytes(kept: string, defaultBytes: number) {
  // parseAgentConfig puts the field's name before it
  const message = `a whole number of bytes from 0 (keeps no ${kept}) up to ${Number.MAX_SAFE_INTEGER}, e.g. ${defaultBytes} (${defaultBytes / 2 ** 30} GiB)`;
  return z
    .number({ error: message })
    .int(message)
    .min(0, message)
    .max(Number.MAX_SAFE_INTEGER, message)
    .default(defaultBytes);
}

export const agentConfigSchema = z.strictObject({
  version: z.literal(1),
  /** The coordinator's REST base URL (used by `init`, `status` and `claim`). */
  coordinatorUrl: z.url(),
  /** The coordinator's libp2p multiaddrs (with /p2p/<peer id>); the agent stays connected to one. */
  bootstrap: z.array(z.string().startsWith('/')).min(1, 'bootstrap: at least one coordinator multiaddr'),
  /** The EVM address whose signed offers this agent accepts. */
  coordinatorAddress: z
    .string()
    .regex(LOWER_CASE_ADDRESS_PATTERN, 'coordinatorAddress: a lower-case 0x address'),
  /**
   * Listen multiaddrs. Default none: the agent only dials out to its coordinator (it works behind NAT
   * and offers nothing to scan). When set, only coordinator peers may connect; strangers are refused.
   */
  listen: z.array(z.string().startsWith('/')).default([]),
  mdns: z.boolean().default(false),
  /**
   * Peers (multiaddrs with /p2p/<peer id>: other agents, watchers) this agent exchanges epoch files
   * with: it dials them, lets them connect, relays epoch announcements to them and serves them the
   * files it keeps, so the files outlive the coordinator. Give them a reachable `listen` address too.
   */
  epochPeers: z.array(z.string().startsWith('/')).default([]),
  /**
   * JSON-RPC URL of the settlement chain: announced epoch files are checked against the file hash on
   * chain before they are kept, and `claim` works from kept files when the coordinator is gone.
   */
  chainRpcUrl: z.url().optional(),
  /** Epoch files of epochs without a leaf of this wallet kept for peers (the newest ones). */
  keepOtherEpochFiles: z.number().int().min(0).max(10_000).default(16),
  /** Price per work unit (1 MFLOP), in base units (micro-tokens). */
  pricePerUnit: z.string().regex(/^\d{1,30}$/, 'pricePerUnit: a non-negative integer string'),
  operatorId: z.string().min(1).max(128).optional(),
  region: z.string().min(1).max(64).optional(),
  slots: z.number().int().min(1).max(256).optional(),
  backend: z.enum(BACKENDS).optional(),
  /**
   * Jobs accepted per executor thread: extra ones wait in the executor's queue, which keeps threads
   * busy between small jobs. 1 for long jobs on scarce memory.
   */
  jobsPerSlot: z.number().int().min(1).max(64).default(4),
  memoryLimitMb: z.number().int().min(64).max(1_048_576).default(2048),
  jobTimeoutMs: z.number().int().min(1000).default(600_000),
  /**
   * Outputs of more bytes than this go to the coordinator by ref: uploaded as binary chunks over the
   * artifact protocol (`put-tensor`) before the result, which then names them; smaller ones travel
   * inline (base64) in the result frame.
   */
  inlineOutputMaxBytes: z.number().int().min(0).max(MAX_TENSOR_BYTES).default(DEFAULT_INLINE_OUTPUT_BYTES),
  /**
   * Bytes of job inputs by ref kept on disk under `tensors/` in the data dir (least recently used out
   * first), so jobs on the same tensors do not fetch them again; 0 = keep none. Lowered at start to
   * what the cache holds plus half the free disk space.
   */
  tensorCacheBytes: cacheBudgetBytes('tensor', DEFAULT_TENSOR_CACHE_BYTES),
  /**
   * Bytes of model artifacts (model.json and weights, both counted) kept on disk under `artifacts/`
   * in the data dir (least recently used out first; never one a running job uses), so jobs on the
   * same model do not fetch it again; 0 = keep none. Lowered at start to what the cache holds plus
   * half the free disk space the tensor cache does not count on.
   */
  artifactCacheBytes: cacheBudgetBytes('artifact', DEFAULT_ARTIFACT_CACHE_BYTES),
  /** Written by `gpumesh-agent benchmark`; advertised as the measured GFLOP/s. */
  benchmarkGflops: z.number().positive().optional(),
  /** The backend `benchmarkGflops` was measured on: the figure is advertised only on that backend. */
  benchmarkBackend: z.enum(BACKENDS).optional(),
  advertIntervalMs: z.number().int().min(1000).max(300_000).default(15_000),
  /** Redial backoff towards the coordinator: doubles from initialDelayMs per failed round, capped. */
  reconnect: z
    .strictObject({
      initialDelayMs: z.number().int().min(100).max(600_000).default(DEFAULT_RECONNECT_INITIAL_DELAY_MS),
      maxDelayMs: z.number().int().min(100).max(3_600_000).default(DEFAULT_RECONNECT_MAX_DELAY_MS),
    })
    .refine((r) => r.maxDelayMs >= r.initialDelayMs, 'reconnect.maxDelayMs must be ≥ initialDelayMs')
    .default({
      initialDelayMs: DEFAULT_RECONNECT_INITIAL_DELAY_MS,
      maxDelayMs: DEFAULT_RECONNECT_MAX_DELAY_MS,
    }),
  /**
   * Exit non-zero after this many seconds without any coordinator connection, so a supervisor
   * (systemd Restart=on-failure) restarts the agent; 0 = never exit.
   */
  maxDisconnectedSeconds: z.number().int().min(0).max(31_536_000).default(DEFAULT_MAX_DISCONNECTED_SECONDS),
});

export type AgentConfig = z.output<typeof agentConfigSchema>;
export type AgentConfigInput = z.input<typeof agentConfigSchema>;

export class AgentConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentConfigError';
  }
}

export function parseAgentConfig(input: unknown, source = 'config'): AgentConfig {
  const parsed = agentConfigSchema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new AgentConfigError(`${source} is invalid:\n${lines.join('\n')}`);
  }
  return parsed.data;
}

export async function readAgentConfig(path: string): Promise<AgentConfig> {
  let raw: string;
  try {
    raw = await readFile(path, 'utf8');
  } catch {
    throw new AgentConfigError(`no config at ${path}; run \`gpumesh-agent init\` first`);
  }
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    throw new AgentConfigError(`${path}: not valid JSON (${(err as Error).message})`);
  }
  return parseAgentConfig(json, path);
}

export async function writeAgentConfig(path: string, config: AgentConfigInput): Promise<void> {
  const checked = parseAgentConfig(config);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(path, `${JSON.stringify(checked, null, 2)}\n`, { mode: 0o600 });
}

export interface AgentPaths {
  dataDir: string;
  keystore: string;
  config: string;
  artifacts: string;
  /** Cached job inputs by ref: one file per tensor, named by the sha256 of its bytes. */
  tensors: string;
  /** Kept epoch files: `epochs/<distributor>/<epoch>.json`. */
  epochs: string;
  journal: string;
  status: string;
  lock: string;
}

export function agentPaths(dataDir: string): AgentPaths {
  return {
    dataDir,
    keystore: join(dataDir, 'keystore.json'),
    config: join(dataDir, 'agent.json'),
    artifacts: join(dataDir, 'artifacts'),
    tensors: join(dataDir, 'tensors'),
    epochs: join(dataDir, 'epochs'),
    journal: join(dataDir, 'journal.jsonl'),
    status: join(dataDir, 'status.json'),
    lock: join(dataDir, 'agent.lock'),
  };
}
