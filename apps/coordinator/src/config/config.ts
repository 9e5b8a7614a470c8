import { ADDRESS_PATTERN, LOWER_CASE_ADDRESS_PATTERN } from '@gpumesh/protocol';
import { z } from 'zod';

export const COORDINATOR_ROLES = ['api', 'worker', 'all'] as const;
export type CoordinatorRole = (typeof COORDINATOR_ROLES)[number];

const integerString = z
  .string()
  .regex(/^\d+$/, 'expected a non-negative integer')
  .transform((v) => BigInt(v));

/** Every setting of the coordinator, validated once at boot. Nothing else reads `process.env`. */
const evmAddress = z
  .string()
  .regex(ADDRESS_PATTERN, 'expected a 0x-prefixed 20-byte hex address')
  .transform((v) => v.toLowerCase());

/**
 * What one result stream may buffer at most: `DATA_FRAME_MAX_BYTES` plus `FRAME_BUFFER_SLACK_BYTES`
 * of @gpumesh/p2p (96 MiB + 64 KiB). A per-peer result budget below it could never take the largest result.
 */
const LARGEST_RESULT_STREAM_BYTES = 96 * 1024 * 1024 + 64 * 1024;
const MIB_BYTES = 1024 * 1024;

const configSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  ROLE: z.enum(COORDINATOR_ROLES).default('all'),
  DATA_DIR: z.string().min(1).default('.data'),
  DATABASE_URL: z.string().url().optional(),
  REDIS_URL: z.string().url().optional(),
  /** Redis key prefix; unset, it is derived from the database's marketplace id (queue/queue-prefix.ts). */
  QUEUE_PREFIX: z
    .string()
    .regex(/^[a-zA-Z0-9_-]+$/)
    .optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** `json` (one JSON object per line), `pretty` (lines for a person), `auto`: pretty in --dev on a terminal. */
  LOG_FORMAT: z.enum(['auto', 'json', 'pretty']).default('auto'),
  PUBLIC_URL: z.string().url().optional(),
  SIWE_DOMAIN: z.string().min(1).optional(),
  CHAIN_ID: z.coerce.number().int().positive().default(31337),
  SESSION_TTL_SECONDS: z.coerce.number().int().positive().default(3600),
  NONCE_TTL_SECONDS: z.coerce.number().int().positive().default(300),
  API_KEY_CACHE_TTL_MS: z.coerce.number().int().min(0).default(5000),
  MAX_BODY_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(8 * 1024 * 1024),
  MAX_ARTIFACT_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(64 * 1024 * 1024),
  /** Largest tensor `POST /v1/tensors` takes, in bytes of element data (413 beyond). */
  MAX_TENSOR_UPLOAD_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(1024 * MIB_BYTES),
  /**
   * Largest job output a provider may upload by ref (the artifact protocol's `put-tensor`), in bytes
   * of element data; also the largest result tensor a job may have at submit (400 beyond). At most
   * MAX_REF_TENSOR_BYTES (1 GiB).
   */
  MAX_RESULT_TENSOR_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .max(1024 * MIB_BYTES)
    .default(1024 * MIB_BYTES),
  /**
   * Most bytes of outputs by ref one result may have for the coordinator to read them back and
   * check them (sanity, comparison within tolerance); above it a result's outputs by ref are
   * compared by hash only (bit-identical copies agree; anything else is undecided, never convicted).
   */
  RESULT_CHECK_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(1024 * MIB_BYTES),
  /** Bytes of uploaded tensors one account may keep (413 TENSOR_QUOTA beyond); 0: no quota. */
  TENSOR_QUOTA_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(16 * 1024 * MIB_BYTES),
  /**
   * Writes uploads to the tensor store in full 1 MiB blocks with O_DIRECT, past the page cache, where
   * the file system takes it (on the bench VM: 256 MiB uploads 1.6–2.9× faster, 350–710 MB/s
   * against 220–260 bound by fresh page-cache pages; their first download then reads the disk;
   * docs/tensors.md). `false`: every byte through the page cache.
   */
  TENSOR_DIRECT_IO: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  /**
   * Days an uploaded tensor is kept after it was last uploaded or named as a job input; then the
   * retention sweep deletes it (never while a job that has not finished names it). 0: kept forever.
   */
  TENSOR_RETENTION_DAYS: z.coerce.number().int().min(0).max(36_600).default(7),
  /**
   * Days a job's output by ref is kept after the job finished (or a later job last named it as an
   * input); then the retention sweep deletes it and `GET /v1/jobs/:id/outputs/:name` answers 410.
   * 0: kept forever.
   */
  OUTPUT_RETENTION_DAYS: z.coerce.number().int().min(0).max(36_600).default(30),
  /** Requests per minute from one client IP (every request); 0 turns the per-IP limit off. */
  RATE_LIMIT_PER_IP: z.coerce.number().int().min(0).default(1200),
  /** Requests per minute with one API key, session or admin cookie; 0 turns the per-key limit off. */
  RATE_LIMIT_PER_KEY: z.coerce.number().int().min(0).default(600),
  /** Where rate-limit counters live: `redis` (shared by every API replica) or `memory` (this process). */
  RATE_LIMIT_STORE: z.enum(['redis', 'memory']).default('redis'),
  /**
   * Which proxies to believe about the client IP (X-Forwarded-For): `false` (the socket address),
   * `true` (any: only behind a proxy that overwrites the header), a hop count, or comma-separated
   * proxy IPs/CIDRs.
   */
  TRUST_PROXY: z
    .string()
    .default('false')
    .transform((v): boolean | number | string[] => {
      const t = v.trim();
      if (t === 'true' || t === 'false') return t === 'true';
      if (/^\d+$/.test(t)) return Number(t);
      return t
        .split(',')
        .map((a) => a.trim())
        .filter((a) => a.length > 0);
    }),
  /**
   * Bearer token a Prometheus scraper sends to `GET /metrics`. Unset: /metrics answers only direct
   * connections from this host (loopback, no forwarding header).
   */
  METRICS_TOKEN: z.string().min(16, 'use at least 16 characters').optional(),
  /** Browser origins allowed to call the API cross-origin (comma-separated `https://host[:port]`, or `*`); empty: none. */
  CORS_ORIGINS: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((a) => a.trim().replace(/\/+$/, ''))
        .filter((a) => a.length > 0),
    )
    .pipe(
      z.array(
        z
          .string()
          .regex(/^(\*|https?:\/\/[^/\s]+)$/, 'expected comma-separated origins (https://host[:port]) or *'),
      ),
    ),
  /** A client must send its request headers within this many ms (slowloris), else the connection is closed. */
  HTTP_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  /** A client must send its whole request (headers and body) within this many ms, else 408 and close. */
  HTTP_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).default(60_000),
  /** An idle keep-alive connection is closed after this many ms. */
  HTTP_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().min(100).default(72_000),
  /** A socket with no traffic either way for this many ms is destroyed (0: never; live event streams may idle). */
  HTTP_IDLE_TIMEOUT_MS: z.coerce.number().int().min(0).default(0),
  DEFAULT_DEADLINE_SECONDS: z.coerce.number().int().positive().default(600),
  PLATFORM_FEE_BPS: z.coerce.number().int().min(0).max(10_000).default(500),
  /**
   * The platform's escrowed account: canary jobs belong to it and are paid from its escrow deposit
   * like any developer's (the operator funds it). Required when settling on a configured chain; the
   * local dev chain uses anvil account 7 and deposits for it; without settlement, a system address.
   */
  PLATFORM_ACCOUNT_ADDRESS: evmAddress.optional(),
  /** Where the platform fee is paid: a leaf of every epoch's tree (default: PLATFORM_ACCOUNT_ADDRESS). */
  FEE_RECIPIENT_ADDRESS: evmAddress.optional(),
  /** Default verification of jobs whose request and account name none (admins may override it at run time). */
  VERIFICATION_MODE: z.enum(['none', 'redundant']).default('none'),
  /** Distinct operators a `redundant` job runs on by default. */
  VERIFICATION_K: z.coerce.number().int().min(2).max(3).default(2),
  /** Default share of dispatches followed by a known-answer canary job. */
  CANARY_RATE: z.coerce.number().min(0).max(0.5).default(0.05),
  /**
   * How long a verified provider credit is held (`provider:<peer>:held`) before it vests into
   * `provider:<peer>:earned` and an epoch; a ban within the hold re-verifies and reverses it.
   * Default 3600, or 0 (credit at once) with DEV_BOOTSTRAP.
   */
  VERIFICATION_HOLD_SECONDS: z.coerce.number().int().min(0).optional(),
  /** Most work units (MFLOP) the coordinator recomputes itself for one job (tie-breaks, re-verification). */
  REFERENCE_WORK_BUDGET: z.coerce.number().int().min(0).default(5_000),
  /** Canary rate at least this high for jobs placed on providers below the trusted reputation. */
  PROBATION_CANARY_RATE: z.coerce.number().min(0).max(0.5).default(0.25),
  /**
   * Webhooks (docs/push.md) may reach http:// URLs and private, loopback or link-local addresses.
   * Off: https to public addresses only. For development and tests.
   */
  WEBHOOK_ALLOW_PRIVATE_ADDRESSES: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  /** Wait before a failed webhook delivery's first retry; each next wait is 4× longer (at most 1 h). */
  WEBHOOK_RETRY_BASE_MS: z.coerce.number().int().min(10).default(2_000),
  /** Attempts of one webhook delivery (the first included) before it is given up (FAILED). */
  WEBHOOK_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(8),
  /** How often workers look for due webhook deliveries (new ones and retries). */
  WEBHOOK_SWEEP_MS: z.coerce.number().int().min(10).default(1_000),
  /** Interval of the `: ping` comment on open server-sent event streams (keeps proxies from closing them). */
  SSE_HEARTBEAT_MS: z.coerce.number().int().min(10).max(300_000).default(15_000),
  /** The `retry:` hint of server-sent event streams: how long a client waits before reconnecting. */
  SSE_RETRY_MS: z.coerce.number().int().min(0).max(600_000).default(3_000),
  /** Stake (base units) proposed for slashing when a provider is caught returning wrong results. */
  SLASH_AMOUNT: integerString.default(10_000_000n),
  /**
   * Stake gating (on whenever the process knows a ProviderStaking contract): a provider takes a job
   * only when its usable stake is at least MIN_PROVIDER_STAKE plus STAKE_PER_INFLIGHT_VALUE times the
   * value (base units) it would then have in flight. Base units; default 10 tokens.
   */
  MIN_PROVIDER_STAKE: integerString.default(10_000_000n),
  /** Stake needed per base unit of work in flight on a provider (collateral ratio; kept to 1e-6). */
  STAKE_PER_INFLIGHT_VALUE: z.coerce.number().min(0).max(1_000_000).default(1),
  /** How often each live provider's stake is re-read from ProviderStaking (also re-read on its events). */
  STAKE_REFRESH_SECONDS: z.coerce.number().int().min(1).default(15),
  /** Review window before a proposed slash may be executed (admins may cancel it meanwhile). */
  SLASH_REVIEW_SECONDS: z.coerce.number().int().min(0).default(86_400),
  /** Half-life of a provider's reputation deviation from the neutral 0.5. */
  REPUTATION_HALF_LIFE_HOURS: z.coerce.number().positive().default(168),
  /**
   * A queued job that no set of providers can take (the dry run's explanation: price, backend, GPU,
   * redundancy over the live operators, ...; busy providers do not count) fails UNPLACEABLE after
   * waiting this long, with that explanation, instead of holding its reservation until its deadline.
   * 0: never (it waits for its deadline).
   */
  UNPLACEABLE_GRACE_SECONDS: z.coerce.number().int().min(0).default(60),
  /**
   * Days the dashboard's per-minute history rows (`StatsRollup`) are kept; older ones are pruned each
   * minute. At least 7: the dashboard's longest range is 7 days.
   */
  HISTORY_RETENTION_DAYS: z.coerce.number().int().min(7).max(3660).default(8),
  DISPATCH_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(8),
  DISPATCH_BACKOFF_MS: z.coerce.number().int().min(10).default(1000),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(50),
  ADMIN_ADDRESSES: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((a) => a.trim().toLowerCase())
        .filter((a) => a.length > 0),
    )
    .pipe(z.array(z.string().regex(LOWER_CASE_ADDRESS_PATTERN, 'expected comma-separated EVM addresses'))),
  P2P_ENABLED: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  /** Comma-separated libp2p listen multiaddrs of a worker's node. */
  P2P_LISTEN: z
    .string()
    .default('/ip4/127.0.0.1/tcp/0')
    .transform((v) =>
      v
        .split(',')
        .map((a) => a.trim())
        .filter((a) => a.length > 0),
    ),
  /** Comma-separated multiaddrs to announce (a public address in front of a private one). */
  P2P_ANNOUNCE: z
    .string()
    .default('')
    .transform((v) =>
      v
        .split(',')
        .map((a) => a.trim())
        .filter((a) => a.length > 0),
    ),
  /** Hard limit of a worker node's p2p connections (defences: libs/p2p/src/connection-guard.ts). */
  P2P_MAX_CONNECTIONS: z.coerce.number().int().min(2).max(100_000).default(300),
  /** Slots only known providers (seen recently, or bound) may take; strangers get the rest. */
  P2P_RESERVED_KNOWN_SLOTS: z.coerce.number().int().min(0).default(64),
  /** Connections that have not presented a peer binding (a valid advert) yet, at once / per IP. */
  P2P_MAX_UNBOUND: z.coerce.number().int().min(1).default(64),
  P2P_MAX_UNBOUND_PER_IP: z.coerce.number().int().min(1).default(16),
  /** An inbound connection with no peer binding after this long is closed (coordinator peers excepted). */
  P2P_UNBOUND_TIMEOUT_MS: z.coerce.number().int().min(1_000).default(20_000),
  /** A stranger younger than this is never displaced by a newcomer when the stranger slots are full. */
  P2P_STRANGER_GRACE_MS: z.coerce.number().int().min(0).default(5_000),
  /** The coordinator's signing key (offers) and libp2p key; created on first start when absent. */
  COORDINATOR_KEY_FILE: z.string().min(1).optional(),
  /** How long an agent has to accept an offer, and the slack added to a job's own deadline. */
  /** How long a dispatch waits for a free provider slot before handing the job back to BullMQ's backoff. */
  CAPACITY_WAIT_MS: z.coerce.number().int().min(0).default(5_000),
  OFFER_ACCEPT_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  /**
   * Bytes of job results one provider's streams may buffer together. Each offer reserves up to 128 KiB
   * before it is sent, and a larger result frame (capped by the offered spec) the rest at its length
   * prefix; with no room either waits (the offer unsent, the stream paused) until the job's deadline.
   */
  RESULT_BYTES_PER_PEER: z.coerce
    .number()
    .int()
    .min(LARGEST_RESULT_STREAM_BYTES)
    .default(128 * MIB_BYTES),
  /**
   * Bytes a second this process moves tensors over libp2p, in each direction (job inputs by ref
   * served to agents; outputs by ref they upload), all streams together, 8 MiB bursts; 0: unpaced.
   * Unset: 48 MiB/s with ROLE=all (the API answers from the same event loop, and each MiB costs it
   * 4–5 ms of CPU), unpaced for a worker of its own (docs/tensors.md).
   */
  P2P_TENSOR_BYTES_PER_SECOND: z.coerce.number().int().min(0).optional(),
  /** Bytes of job results all providers' streams may buffer together (at least RESULT_BYTES_PER_PEER). */
  RESULT_BYTES_TOTAL: z.coerce
    .number()
    .int()
    .min(LARGEST_RESULT_STREAM_BYTES)
    .default(256 * MIB_BYTES),
  /**
   * After a provider accepted, an attempt is LOST (TIMEOUT) when not one byte arrives for this long
   * (agents send a heartbeat every 5 s while running). 0 turns it off, for agents older than heartbeats.
   */
  RESULT_SILENCE_TIMEOUT_MS: z.coerce.number().int().min(0).default(20_000),
  DEV_CREDITS: integerString.default(1_000_000_000_000n),
  DEV_BOOTSTRAP: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  /** Epochs, on-chain roots and escrow deposits (default off; `--dev` turns it on). */
  SETTLEMENT_ENABLED: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  /** Length of an epoch; default 3600, or 20 with DEV_BOOTSTRAP. */
  EPOCH_SECONDS: z.coerce.number().int().min(1).optional(),
  /** How often a worker checks whether an epoch is due, posts roots and polls finality (0: never). */
  SETTLEMENT_TICK_MS: z.coerce.number().int().min(0).default(2000),
  /** JSON-RPC of the chain; unset with settlement on (role all) starts a local anvil. */
  CHAIN_RPC_URL: z.string().url().optional(),
  /** JSON file with token, distributor, escrow, staking and deployBlock (else the *_ADDRESS settings). */
  CONTRACTS_FILE: z.string().min(1).optional(),
  DISTRIBUTOR_ADDRESS: z.string().regex(ADDRESS_PATTERN).optional(),
  ESCROW_ADDRESS: z.string().regex(ADDRESS_PATTERN).optional(),
  /** ProviderStaking (slashes are executed there; the dashboard reads stakes from it). */
  STAKING_ADDRESS: z.string().regex(ADDRESS_PATTERN).optional(),
  /** Private key (0x hex) holding SLASHER_ROLE on ProviderStaking (default: SETTLER_KEY). */
  SLASHER_KEY: z
    .string()
    .regex(/^0x[0-9a-fA-F]{64}$/, 'expected a 0x-prefixed 32-byte hex private key')
    .optional(),
  /** The JSON-RPC URL agents are told to use (`GET /v1/rewards/chain`); never CHAIN_RPC_URL itself. */
  PUBLIC_CHAIN_RPC_URL: z.string().url().optional(),
  /** The escrow's deploy block: where the deposit watcher starts. */
  ESCROW_DEPLOY_BLOCK: z.coerce.number().int().min(0).default(0),
  /** Private key (0x hex) holding SETTLER_ROLE on the distributor (posts roots; it sends the escrow debits, which anyone may send). */
  SETTLER_KEY: z
    .string()
    .regex(/^0x[0-9a-fA-F]{64}$/, 'expected a 0x-prefixed 32-byte hex private key')
    .optional(),
  /** Confirmations before an escrow deposit is credited. */
  DEPOSIT_CONFIRMATIONS: z.coerce.number().int().min(1).default(3),
  /** Confirmations to wait for after posting a root or funding an epoch. */
  SETTLEMENT_CONFIRMATIONS: z.coerce.number().int().min(1).default(1),
  /** Challenge window of the contracts deployed on the local dev chain. */
  DEV_CHALLENGE_WINDOW_SECONDS: z.coerce.number().int().min(0).default(10),

  // Proven capacity (capacity/): a provider's speed is measured by timed known-answer jobs.
  /** Timed known-answer matmul jobs measure each provider's speed when it joins and at random after. */
  CAPACITY_PROBES: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  /** GFLOP/s a provider is credited with at most until its speed was measured. */
  CAPACITY_PROBATION_GFLOPS: z.coerce.number().positive().default(100),
  /** A probe is sized to take this long at the advertised speed (then capped, see below). */
  CAPACITY_PROBE_TARGET_MS: z.coerce.number().int().min(100).max(60_000).default(1_500),
  /**
   * Smallest and largest probe, in work units (MFLOP); the largest is also capped by REFERENCE_WORK_BUDGET
   * and by the probe's byte limit (MAX_PROBE_SIDE in capacity/capacity.ts: 268 MFLOP).
   */
  CAPACITY_PROBE_MIN_WORK_UNITS: z.coerce.number().int().min(1).default(20),
  CAPACITY_PROBE_MAX_WORK_UNITS: z.coerce.number().int().min(1).default(250),
  /** Mean time between a provider's probes after the first (exponentially distributed, so unpredictable). */
  CAPACITY_PROBE_MEAN_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(1_000)
    .default(3 * 3_600_000),
  /** How often due probes are looked for (a joining provider waits at most about this long). */
  CAPACITY_PROBE_TICK_MS: z.coerce.number().int().min(100).default(5_000),
  /** Most base units per work unit the platform pays for a probe; a dearer provider stays unmeasured. */
  CAPACITY_PROBE_MAX_PRICE_PER_UNIT: integerString.default(1_000n),
  /**
   * Round trip and result transfer allowed on top of a probe's compute time before a slow answer
   * counts against the advert (a capped probe of a fast GPU is mostly this).
   */
  CAPACITY_PROBE_OVERHEAD_MS: z.coerce.number().int().min(0).default(1_000),
  /** An advert this many times above what the probe shows costs reputation and is flagged. */
  CAPACITY_OVERSTATED_FACTOR: z.coerce.number().min(1).default(3),
  // Proven speed from real work (capacity/proven-speed.ts): verified jobs raise the figure.
  /** Round trip allowed on top of a verified job's compute time (subtracted from its elapsed time). */
  CAPACITY_CREDIT_OVERHEAD_MS: z.coerce.number().int().min(0).default(100),
  /** Result bytes per second assumed for a verified job's result transfer (allowance = bytes / this). */
  CAPACITY_CREDIT_TRANSFER_BYTES_PER_S: z.coerce.number().positive().default(100_000_000),
  /** A verified job whose compute time (elapsed minus allowances) is shorter resolves no speed. */
  CAPACITY_CREDIT_MIN_COMPUTE_MS: z.coerce.number().int().min(1).default(1_000),
  /** A credited speed stands this long unless shown again; then the next, lower figure replaces it. */
  CAPACITY_CREDIT_WINDOW_MS: z.coerce
    .number()
    .int()
    .min(1_000)
    .default(6 * 3_600_000),
});

export type AppConfig = Omit<z.output<typeof configSchema>, 'QUEUE_PREFIX'> & {
  /**
   * The Redis key prefix. loadConfig gives QUEUE_PREFIX or, unset, the legacy `gpumesh`;
   * startCoordinator replaces that with the prefix derived from the database (queuePrefixExplicit false).
   */
  QUEUE_PREFIX: string;
  queuePrefixExplicit: boolean;
  siweDomain: string;
  coordinatorKeyFile: string;
  /** PLATFORM_ACCOUNT_ADDRESS or its default (see there), lower-case. */
  platformAccountAddress: string;
  /** FEE_RECIPIENT_ADDRESS, else the platform account, lower-case. */
  feeRecipientAddress: string;
};

/** The Redis prefix of coordinators before prefixes were derived from the database. */
export const LEGACY_QUEUE_PREFIX = 'gpumesh';

/** The platform account of the local dev chain: anvil account 7 (its key is public; dev only). */
export const DEV_PLATFORM_ACCOUNT_ADDRESS = '0x14dc79964da2c08b23698b3d3cc7ca32193d9955';
/** The platform account without settlement: a system address nobody holds a key for (no chain, no money). */
export const OFF_CHAIN_PLATFORM_ACCOUNT_ADDRESS = '0x000000000000000000000000000000000000ca11';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Parses the environment (plus command-line overrides) into the typed configuration or throws a readable error. */
export function loadConfig(
  env: Record<string, string | undefined>,
  overrides: Record<string, string | undefined> = {},
): AppConfig {
  const merged: Record<string, string | undefined> = { ...env };
  for (const [key, value] of Object.entries(overrides)) {
    if (value !== undefined) merged[key] = value;
  }
  for (const [key, value] of Object.entries(merged)) {
    if (value === '') merged[key] = undefined;
  }
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const config = parsed.data;
  if (config.HTTP_HEADERS_TIMEOUT_MS > config.HTTP_REQUEST_TIMEOUT_MS) {
    throw new ConfigError(
      'invalid configuration:\n  HTTP_HEADERS_TIMEOUT_MS: must not exceed HTTP_REQUEST_TIMEOUT_MS',
    );
  }
  if (config.RESULT_BYTES_TOTAL < config.RESULT_BYTES_PER_PEER) {
    throw new ConfigError(
      'invalid configuration:\n  RESULT_BYTES_TOTAL: must be at least RESULT_BYTES_PER_PEER',
    );
  }
  if (config.SETTLEMENT_ENABLED && config.CHAIN_RPC_URL && !config.PLATFORM_ACCOUNT_ADDRESS) {
    throw new ConfigError(
      'invalid configuration:\n  PLATFORM_ACCOUNT_ADDRESS: required when settling on CHAIN_RPC_URL (the escrowed account that pays canary jobs; fund its escrow deposit)',
    );
  }
  const platformAccountAddress =
    config.PLATFORM_ACCOUNT_ADDRESS ??
    (config.SETTLEMENT_ENABLED ? DEV_PLATFORM_ACCOUNT_ADDRESS : OFF_CHAIN_PLATFORM_ACCOUNT_ADDRESS);
  return {
    ...config,
    QUEUE_PREFIX: config.QUEUE_PREFIX ?? LEGACY_QUEUE_PREFIX,
    queuePrefixExplicit: config.QUEUE_PREFIX !== undefined,
    platformAccountAddress,
    feeRecipientAddress: config.FEE_RECIPIENT_ADDRESS ?? platformAccountAddress,
    siweDomain: config.SIWE_DOMAIN ?? `${config.HOST}:${config.PORT}`,
    coordinatorKeyFile: config.COORDINATOR_KEY_FILE ?? `${config.DATA_DIR}/coordinator-identity.json`,
  };
}

export const APP_CONFIG = Symbol('APP_CONFIG');
