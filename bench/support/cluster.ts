// A whole marketplace as real processes, with faults on demand: the coordinator's API and worker
// roles as separate processes, provider agents, and TCP fault proxies in front of PostgreSQL and
// Redis (a "restart" of either drops every connection and refuses new ones for a while, exactly
// what the coordinator sees when the server restarts, without disturbing the machine's shared
// servers). Used by the fault tests (test/faults) and the chaos bench (bench/chaos.bench.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { generatePeerKey, peerKeyToHex } from '@gpumesh/p2p';
import { deleteRedisPrefix } from '../support.js';

// Built entry points (run `npm run build` first), whether this file runs from bench/ or dist/bench/.
const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const distRoot = root.endsWith('/dist') ? root : join(root, 'dist');
export const COORDINATOR_JS = join(distRoot, 'apps', 'coordinator', 'src', 'main.js');
export const AGENT_JS = join(
  root.endsWith('/dist') ? join(root, '..') : root,
  'apps',
  'provider-agent',
  'dist',
  'main.js',
);

/** A TCP proxy that can drop every connection and refuse new ones for a while. */
export class FaultProxy {
  private readonly sockets = new Set<Socket>();
  private downUntil = 0;
  private server!: Server;
  port = 0;
  cuts = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async start(): Promise<void> {
    this.server = createServer((client) => {
      if (Date.now() < this.downUntil) {
        client.destroy();
        return;
      }
      const upstream = connect(this.targetPort, this.targetHost);
      this.sockets.add(client);
      this.sockets.add(upstream);
      const close = (): void => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy has no port');
    this.port = address.port;
  }

  /** The server "restarts": every open connection drops, and new ones are refused for `downMs`. */
  cut(downMs: number): void {
    this.cuts += 1;
    this.downUntil = Date.now() + downMs;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  async stop(): Promise<void> {
    this.cut(0);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export interface ClusterProcess {
  readonly name: string;
  child: ChildProcess;
  output: string;
}

export interface ClusterOptions {
  databaseUrl: string;
  redisUrl: string;
  agents: number;
  /** Extra environment for the coordinator processes. */
  env?: Record<string, string>;
  log?: (line: string) => void;
  /**
   * One coordinator process with `--role all` (API and worker in one) instead of an API process and
   * a worker process; `api` and `worker` then name that same process. Default false.
   */
  roleAll?: boolean;
  /** Node flags for the coordinator processes (e.g. `--cpu-prof --cpu-prof-dir=…`). */
  coordinatorNodeArgs?: string[];
  /** Set up and start the agents all at once instead of one after another. Default false. */
  parallelAgents?: boolean;
}

export type CoordinatorRole = 'all' | 'api' | 'worker';

/** A coordinator process added with `Cluster.addCoordinator` (scale-out). */
export interface ExtraCoordinator extends ClusterProcess {
  readonly role: CoordinatorRole;
  /** Its HTTP base URL (the API for roles all and api; /health and /metrics for every role). */
  readonly url: string;
}

function spawnReady(
  name: string,
  script: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: RegExp,
  timeoutMs = 90_000,
  nodeArgs: string[] = [],
): Promise<{ proc: ClusterProcess; match: RegExpExecArray }> {
  const child = spawn(process.execPath, [...nodeArgs, script, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const proc: ClusterProcess = { name, child, output: '' };
  const append = (d: Buffer): void => {
    proc.output = (proc.output + d.toString()).slice(-200_000);
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} not ready:\n${proc.output.slice(-4000)}`)),
      timeoutMs,
    );
    const check = (): void => {
      const m = ready.exec(proc.output);
      if (m) {
        clearTimeout(timer);
        child.stdout?.off('data', check);
        resolve({ proc, match: m });
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before ready:\n${proc.output.slice(-4000)}`));
    });
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no free port');
  return address.port;
}

function waitExit(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

/**
 * Coordinator API + worker processes on PostgreSQL and Redis behind fault proxies, and `agents`
 * agent processes. Kill and restart any of them; cut the database or Redis.
 */
export class Cluster {
  readonly pgProxy: FaultProxy;
  readonly redisProxy: FaultProxy;
  api!: ClusterProcess;
  worker!: ClusterProcess;
  readonly agents: ClusterProcess[] = [];
  /** Coordinator processes added by addCoordinator, in order. */
  readonly extra: ExtraCoordinator[] = [];
  apiUrl = '';
  devKey = '';
  private dir = '';
  private p2pPort = 0;
  private readonly prefix = `chaos${randomBytes(4).toString('hex')}`;

  constructor(private readonly options: ClusterOptions) {
    const db = new URL(options.databaseUrl);
    const redis = new URL(options.redisUrl);
    this.pgProxy = new FaultProxy(db.hostname, Number(db.port || 5432));
    this.redisProxy = new FaultProxy(redis.hostname, Number(redis.port || 6379));
  }

  private coordinatorEnv(): NodeJS.ProcessEnv {
    const db = new URL(this.options.databaseUrl);
    db.hostname = '127.0.0.1';
    db.port = String(this.pgProxy.port);
    return {
      ...process.env,
      DATABASE_URL: db.toString(),
      REDIS_URL: `redis://127.0.0.1:${this.redisProxy.port}`,
      QUEUE_PREFIX: this.prefix,
      LOG_LEVEL: 'warn',
      SETTLEMENT_ENABLED: 'false',
      CANARY_RATE: '0',
      PROBATION_CANARY_RATE: '0',
      // Platform-paid capacity probes are jobs too: runs that count jobs and money leave them out.
      CAPACITY_PROBES: 'false',
      RATE_LIMIT_PER_IP: '0',
      RATE_LIMIT_PER_KEY: '0',
      RATE_LIMIT_STORE: 'memory',
      ...this.options.env,
    };
  }

  async start(): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), 'gpumesh-cluster-'));
    await this.pgProxy.start();
    await this.redisProxy.start();
    if (this.options.roleAll) {
      await this.startAll();
    } else {
      await this.startApi();
      await this.startWorker();
    }
    if (this.options.parallelAgents) {
      await Promise.all(Array.from({ length: this.options.agents }, (_, n) => this.startAgent(n, true)));
    } else {
      for (let n = 0; n < this.options.agents; n++) await this.startAgent(n, true);
    }
  }

  /** The first coordinator as one `--role all --dev` process (roleAll): both `api` and `worker`. */
  async startAll(): Promise<void> {
    this.p2pPort ||= await freePort();
    const port = this.apiUrl ? new URL(this.apiUrl).port : '0';
    const { proc } = await spawnReady(
      'coordinator',
      COORDINATOR_JS,
      ['--role', 'all', '--dev', '--agents', '0', '--port', port, '--data-dir', join(this.dir, 'all')],
      { ...this.coordinatorEnv(), P2P_LISTEN: `/ip4/127.0.0.1/tcp/${this.p2pPort}` },
      /gpumesh ready/,
      90_000,
      this.options.coordinatorNodeArgs,
    );
    this.api = proc;
    this.worker = proc;
    this.apiUrl = /API\s+(http:\/\/\S+)\/v1/.exec(proc.output)?.[1] ?? this.apiUrl;
    this.devKey = /dev key\s+(gmk_\S+)/.exec(proc.output)?.[1] ?? this.devKey;
    if (!this.apiUrl || !this.devKey) throw new Error(`coordinator printed no URL or key:\n${proc.output}`);
  }

  /**
   * Scale-out: one more coordinator process on the same PostgreSQL and Redis (through the same
   * proxies). A worker-capable one gets its own identity file with the first worker's offer signer
   * and a fresh libp2p key, and a fixed libp2p port. Agents learn a new worker from
   * `GET /v1/network` when they (re)start: see `restartAgent`.
   */
  async addCoordinator(role: CoordinatorRole): Promise<ExtraCoordinator> {
    const n = this.extra.length + 2;
    const dataDir = join(this.dir, `coordinator-${n}`);
    const env = this.coordinatorEnv();
    if (role !== 'api') {
      await this.shareSigner(dataDir);
      env.P2P_LISTEN = `/ip4/127.0.0.1/tcp/${await freePort()}`;
    }
    const { proc } = await spawnReady(
      `coordinator-${n} (${role})`,
      COORDINATOR_JS,
      ['--role', role, '--port', '0', '--data-dir', dataDir],
      env,
      /gpumesh ready/,
      90_000,
      this.options.coordinatorNodeArgs,
    );
    const url = /API\s+(http:\/\/\S+)\/v1/.exec(proc.output)?.[1];
    if (!url) throw new Error(`${proc.name} printed no URL:\n${proc.output}`);
    const extra: ExtraCoordinator = Object.assign(proc, { role, url });
    this.extra.push(extra);
    return extra;
  }

  /** Every URL serving the API: the first coordinator's and those of added `all`/`api` processes. */
  apiUrls(): string[] {
    return [this.apiUrl, ...this.extra.filter((e) => e.role !== 'worker').map((e) => e.url)];
  }

  /** Every coordinator process: the first API and worker (one process with roleAll) and the added ones. */
  coordinators(): ClusterProcess[] {
    const first = this.options.roleAll ? [this.api] : [this.api, this.worker];
    return [...first, ...this.extra];
  }

  /** Stops an agent gracefully (SIGINT) and starts it again: it re-reads the coordinator's workers. */
  async restartAgent(n: number): Promise<void> {
    this.options.log?.(`restart agent-${n}`);
    await waitExit(this.agents[n].child, 'SIGINT');
    await this.startAgent(n);
  }

  private async shareSigner(dataDir: string): Promise<void> {
    const firstDir = join(this.dir, this.options.roleAll ? 'all' : 'worker');
    const first = JSON.parse(await readFile(join(firstDir, 'coordinator-identity.json'), 'utf8')) as {
      signerPrivateKey: string;
    };
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const identity = {
      version: 1,
      signerPrivateKey: first.signerPrivateKey,
      peerKey: peerKeyToHex(await generatePeerKey()),
    };
    await writeFile(join(dataDir, 'coordinator-identity.json'), `${JSON.stringify(identity, null, 2)}\n`, {
      mode: 0o600,
    });
  }

  async startApi(): Promise<void> {
    const port = this.apiUrl ? new URL(this.apiUrl).port : '0';
    const { proc } = await spawnReady(
      'api',
      COORDINATOR_JS,
      ['--role', 'api', '--dev', '--agents', '0', '--port', port, '--data-dir', join(this.dir, 'api')],
      this.coordinatorEnv(),
      /gpumesh ready/,
      90_000,
      this.options.coordinatorNodeArgs,
    );
    this.api = proc;
    this.apiUrl = /API\s+(http:\/\/\S+)\/v1/.exec(proc.output)?.[1] ?? this.apiUrl;
    this.devKey = /dev key\s+(gmk_\S+)/.exec(proc.output)?.[1] ?? this.devKey;
    if (!this.apiUrl || !this.devKey) throw new Error(`api printed no URL or key:\n${proc.output}`);
  }

  async startWorker(): Promise<void> {
    // A fixed libp2p port, like a real deployment: agents redial the same address after a restart.
    this.p2pPort ||= await freePort();
    const { proc } = await spawnReady(
      'worker',
      COORDINATOR_JS,
      ['--role', 'worker', '--port', '0', '--data-dir', join(this.dir, 'worker')],
      { ...this.coordinatorEnv(), P2P_LISTEN: `/ip4/127.0.0.1/tcp/${this.p2pPort}` },
      /gpumesh ready/,
      90_000,
      this.options.coordinatorNodeArgs,
    );
    this.worker = proc;
  }

  async startAgent(n: number, init = false): Promise<void> {
    const dataDir = join(this.dir, `agent-${n}`);
    const env = { ...process.env, GPUMESH_AGENT_PASSPHRASE: 'cluster-passphrase' };
    if (init) {
      await spawnReady(
        `agent-${n} init`,
        AGENT_JS,
        [
          'init',
          '--coordinator',
          this.apiUrl,
          '--data-dir',
          dataDir,
          '--light-kdf',
          '--slots',
          '1',
          '--backend',
          'cpu',
        ],
        env,
        /created/,
      );
    }
    const { proc } = await spawnReady(
      `agent-${n}`,
      AGENT_JS,
      ['start', '--data-dir', dataDir, '--log-level', 'warn'],
      env,
      /gpumesh-agent ready/,
    );
    this.agents[n] = proc;
  }

  /** SIGKILL a process (no shutdown hook runs). */
  async kill(proc: ClusterProcess): Promise<void> {
    this.options.log?.(`kill -9 ${proc.name}`);
    await waitExit(proc.child, 'SIGKILL');
  }

  /** Freezes a process (SIGSTOP) for `ms`, then lets it go on: a provider cut off that returns late. */
  async freeze(proc: ClusterProcess, ms: number): Promise<void> {
    this.options.log?.(`freeze ${proc.name} ${ms} ms`);
    proc.child.kill('SIGSTOP');
    await new Promise((r) => setTimeout(r, ms));
    proc.child.kill('SIGCONT');
  }

  async stop(): Promise<void> {
    for (const p of new Set([...this.agents, ...this.extra, this.worker, this.api])) {
      if (p) {
        p.child.kill('SIGCONT');
        await waitExit(p.child, 'SIGINT');
      }
    }
    await this.pgProxy.stop().catch(() => undefined);
    await this.redisProxy.stop().catch(() => undefined);
    await deleteRedisPrefix(this.prefix, this.options.redisUrl).catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** What the ledger and the jobs say after a run: every invariant the fault suites check. */
export interface Audit {
  jobs: number;
  byState: Record<string, number>;
  /** Jobs not yet in a terminal state. */
  open: number;
  /** Jobs with more than one job.completed event (ran to completion twice). */
  completedTwice: number;
  /** Jobs paid more than once (more than one `settle` ledger transaction). */
  paidTwice: number;
  /** Completed jobs with no settle transaction, failed/expired/cancelled ones with no release. */
  unsettled: number;
  /** Sum of every ledger entry (0 when nothing is lost or doubled). */
  ledgerSum: string;
  /** Ledger accounts whose running balance differs from the sum of their entries. */
  balanceMismatches: number;
  /** Reserved balance left on developer accounts beyond the cost of the jobs still open. */
  strandedReservation: string;
}

export async function auditDatabase(databaseUrl: string): Promise<Audit> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const q = async <T extends pg.QueryResultRow>(sql: string): Promise<T[]> =>
      (await client.query<T>(sql)).rows;
    const states = await q<{ state: string; n: number }>(
      'SELECT state::text, count(*)::int AS n FROM "Job" GROUP BY state',
    );
    const byState = Object.fromEntries(states.map((s) => [s.state, s.n]));
    const jobs = states.reduce((a, s) => a + s.n, 0);
    const open = states
      .filter((s) => ['QUEUED', 'DISPATCHED', 'RUNNING', 'VERIFYING'].includes(s.state))
      .reduce((a, s) => a + s.n, 0);
    const [{ n: completedTwice }] = await q<{ n: number }>(`
      SELECT count(*)::int AS n FROM (SELECT "jobId" FROM "JobEvent" WHERE type = 'job.completed'
        GROUP BY "jobId" HAVING count(*) > 1) t`);
    const [{ n: paidTwice }] = await q<{ n: number }>(`
      SELECT count(*)::int AS n FROM (SELECT "jobId" FROM "LedgerEntry" WHERE kind = 'settle'
        GROUP BY "jobId" HAVING count(DISTINCT "txId") > 1) t`);
    const [{ n: unsettled }] = await q<{ n: number }>(`
      SELECT count(*)::int AS n FROM "Job" j WHERE
        (j.state = 'COMPLETED' AND NOT EXISTS (SELECT 1 FROM "LedgerEntry" e WHERE e."jobId" = j.id AND e.kind = 'settle'))
        OR (j.state IN ('FAILED', 'EXPIRED', 'CANCELLED')
            AND NOT EXISTS (SELECT 1 FROM "LedgerEntry" e WHERE e."jobId" = j.id AND e.kind IN ('release', 'settle')))`);
    const [{ s: ledgerSum }] = await q<{ s: string }>(
      'SELECT COALESCE(SUM(amount), 0)::text AS s FROM "LedgerEntry"',
    );
    const mismatched = await q<{ account: string; balance: string; entries: string }>(`
      SELECT b.account, b.balance::text, COALESCE(e.s, 0)::text AS entries FROM "LedgerBalance" b
        LEFT JOIN (SELECT account, SUM(amount) AS s FROM "LedgerEntry" GROUP BY account) e ON e.account = b.account
       WHERE b.balance <> COALESCE(e.s, 0)`);
    const balanceMismatches = mismatched.length;
    if (balanceMismatches > 0) console.error('[audit] balances that differ from their entries', mismatched);
    const [{ s: strandedReservation }] = await q<{ s: string }>(`
      SELECT (COALESCE((SELECT SUM(balance) FROM "LedgerBalance" WHERE account LIKE 'acct:%:reserved'), 0)
            - COALESCE((SELECT SUM(cost) FROM "Job" WHERE state IN ('QUEUED', 'DISPATCHED', 'RUNNING', 'VERIFYING')), 0))::text AS s`);
    return {
      jobs,
      byState,
      open,
      completedTwice,
      paidTwice,
      unsettled,
      ledgerSum,
      balanceMismatches,
      strandedReservation,
    };
  } finally {
    await client.end();
  }
}

/** Placement invariants when several coordinator workers share the queue (scale-out). */
export interface PlacementAudit {
  /** Jobs with two attempts open at the same time (offered before the other ended): placed twice (check runs excluded). */
  placedTwice: number;
  /** Jobs dispatched more than once (placed again after a failed or lost attempt; 0 without faults). */
  dispatchedTwice: number;
  /** Jobs with more than one succeeded attempt (check runs excluded). */
  succeededTwice: number;
  /**
   * Jobs a provider of another operator ran again to check a result on probation (trust tiers, when
   * the coordinator's reference was unavailable): two attempts by design, left out of the two above.
   */
  checkRuns: number;
  /** Attempts that ended failed or lost. */
  failedAttempts: number;
  /** Those attempts by error (first words), most frequent first. */
  failureReasons: Record<string, number>;
}

/** Jobs whose probation result was checked by a second provider's run (see PlacementAudit.checkRuns). */
const CHECK_RUN_JOBS = `SELECT DISTINCT "jobId" FROM "JobEvent" WHERE type = 'verification.reference_unavailable'`;

export async function auditPlacements(databaseUrl: string): Promise<PlacementAudit> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const one = async (sql: string): Promise<number> => (await client.query<{ n: number }>(sql)).rows[0].n;
    return {
      placedTwice: await one(`
        SELECT count(DISTINCT a."jobId")::int AS n FROM "JobAttempt" a
          JOIN "JobAttempt" b ON b."jobId" = a."jobId" AND b.attempt > a.attempt
         WHERE b."offeredAt" < COALESCE(a."finishedAt", 'infinity'::timestamp)
           AND a."jobId" NOT IN (${CHECK_RUN_JOBS})`),
      dispatchedTwice: await one(`
        SELECT count(*)::int AS n FROM (SELECT "jobId" FROM "JobEvent" WHERE type = 'job.dispatched'
          GROUP BY "jobId" HAVING count(*) > 1) t`),
      succeededTwice: await one(`
        SELECT count(*)::int AS n FROM (SELECT "jobId" FROM "JobAttempt" WHERE state = 'SUCCEEDED'
           AND "jobId" NOT IN (${CHECK_RUN_JOBS}) GROUP BY "jobId" HAVING count(*) > 1) t`),
      checkRuns: await one(`SELECT count(*)::int AS n FROM (${CHECK_RUN_JOBS}) t`),
      failedAttempts: await one(
        `SELECT count(*)::int AS n FROM "JobAttempt" WHERE state IN ('FAILED', 'LOST')`,
      ),
      failureReasons: Object.fromEntries(
        (
          await client.query<{ reason: string; n: number }>(`
            SELECT left(COALESCE(error, '?'), 60) AS reason, count(*)::int AS n FROM "JobAttempt"
             WHERE state IN ('FAILED', 'LOST') GROUP BY 1 ORDER BY 2 DESC LIMIT 5`)
        ).rows.map((r) => [r.reason, r.n]),
      ),
    };
  } finally {
    await client.end();
  }
}
