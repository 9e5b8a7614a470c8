// p2p attacks (issue 25): honest jobs during each attack beside a clean run. Every phase is a fresh
// marketplace of real processes (one coordinator `--role all`, BENCH_P2P_ATTACK_AGENTS agents, its
// own database), so one attack's leftovers never bill the next. In each phase tiny matmul jobs are
// submitted at a steady rate while one attacker (a real bare libp2p node from
// bench/support/attackers.ts) does its worst; the clean phase runs the same load with no attacker.
// Per attack it reports, each against its goal:
//   - the fraction of honest jobs completed                       goal >= 0.99
//   - p50 submit-to-result latency (jobs that never completed count as never finishing) and its
//     ratio to the clean run's                                    goal <= 2x
//   - the coordinator's RSS growth during the phase              goal <= 256 MB
//   - ghost attacks: seconds from the last ghost advert until no ghost is in GET /v1/providers
//                                                                 goal <= one advert lifetime
// and what the attacker got (offers, attempts, artifacts served, reconnections) for information.
// Runs against whatever code is in the tree: a failing goal is a finding, not an error.
//   npm run bench -- --only p2p-attack
//   BENCH_P2P_ATTACKS=stalling-liar,ghost-relay npm run bench -- --only p2p-attack
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Cluster } from './support/cluster.js';
import { submitUntil } from './support/load.js';
import {
  coordinatorPeer,
  makeGhosts,
  startAttacker,
  startConnectionFlood,
  startGhostRelay,
  startStrangerFetcher,
  type Attacker,
  type CoordinatorPeer,
  type Ghost,
  type JobBehaviour,
} from './support/attackers.js';
import { BENCH_REDIS_URL, createBenchDatabase, percentile, round } from './support.js';

export const ATTACKS = [
  'stalling-liar',
  'non-serving-liar',
  'half-frame-liar',
  'ghost-relay',
  'advert-flood',
  'connection-flood',
  'oversize-results',
  'banned-reconnect',
  'forged-receipts',
  'stranger-fetch',
] as const;
export type AttackName = (typeof ATTACKS)[number];

const envNumber = (name: string, fallback: number): number => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0)
    throw new Error(`BENCH_BAD_SETTING: ${name}=${raw} is not a number >= 0`);
  return value;
};

/** BENCH_P2P_ATTACKS: a comma-separated subset of ATTACKS (default all). */
function selectedAttacks(): AttackName[] {
  const raw = process.env.BENCH_P2P_ATTACKS;
  if (!raw) return [...ATTACKS];
  const names = raw
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  const unknown = names.filter((n) => !(ATTACKS as readonly string[]).includes(n));
  if (unknown.length > 0) {
    throw new Error(
      `BENCH_BAD_SETTING: unknown attack(s) ${unknown.join(', ')}; known: ${ATTACKS.join(', ')}`,
    );
  }
  return names as AttackName[];
}

/** Honest agent processes in every phase. */
const AGENTS = envNumber('BENCH_P2P_ATTACK_AGENTS', 2);
/** Honest jobs a second, and for how many seconds, in every phase. */
const RATE = envNumber('BENCH_P2P_ATTACK_RATE', 4);
const LOAD_SECONDS = envNumber('BENCH_P2P_ATTACK_SECONDS', 15);
/** Unmeasured jobs run before each phase's measured load (and before its attack starts). */
const WARMUP_JOBS = envNumber('BENCH_P2P_ATTACK_WARMUP_JOBS', 8);
/** Each honest job's deadline: a job an attacker holds expires after this (and counts as not completed). */
const DEADLINE_S = envNumber('BENCH_P2P_ATTACK_DEADLINE_S', 30);
/** How long after the deadline the phase waits for its jobs to end before counting the rest as open. */
const DRAIN_GRACE_S = 15;
/** Ghost identities relayed through one connection (ghost-relay). */
const GHOSTS = envNumber('BENCH_P2P_ATTACK_GHOSTS', 50);
/** Adverts in the advert flood, each for its own never-connected identity (advert-flood). */
const FLOOD_ADVERTS = envNumber('BENCH_P2P_ATTACK_FLOOD_ADVERTS', 2000);
/** Wallets the flood's identities use (default one each, like real identities; fewer are shared round robin). */
const FLOOD_WALLETS = envNumber('BENCH_P2P_ATTACK_FLOOD_WALLETS', FLOOD_ADVERTS);
/** Lifetime of the ghosts' adverts: every ghost must be gone from the public list within it. */
const GHOST_TTL_S = envNumber('BENCH_P2P_ATTACK_GHOST_TTL_S', 30);
/** After the lifetime, how much longer the ghost watch goes on (to report a time even when late). */
const GHOST_WATCH_EXTRA_S = envNumber('BENCH_P2P_ATTACK_GHOST_WATCH_EXTRA_S', 15);
/** Junk libp2p connections, the fresh identities they come from, and raw silent TCP sockets. */
const JUNK_CONNECTIONS = envNumber('BENCH_P2P_ATTACK_CONNECTIONS', 300);
const JUNK_IDENTITIES = envNumber('BENCH_P2P_ATTACK_CONNECTION_IDENTITIES', 10);
const JUNK_SOCKETS = envNumber('BENCH_P2P_ATTACK_SOCKETS', 50);
/** How long a new honest agent started during the connection flood may take to be listed. */
const NEWCOMER_TIMEOUT_S = 30;
/** Size of each oversize result frame (capped just under the frame limit). */
const OVERSIZE_MB = envNumber('BENCH_P2P_ATTACK_OVERSIZE_MB', 80);
/** Oversize result streams the attacker feeds at once. */
const OVERSIZE_STREAMS = envNumber('BENCH_P2P_ATTACK_OVERSIZE_STREAMS', 6);
/** Model weights uploaded for the stranger to fetch, and its concurrent fetches. */
const ARTIFACT_KB = envNumber('BENCH_P2P_ATTACK_ARTIFACT_KB', 1024);
const FETCH_CONCURRENCY = envNumber('BENCH_P2P_ATTACK_FETCH_CONCURRENCY', 2);
/** How long an attacker's advert may take to reach the public list before the load starts. */
const LISTED_TIMEOUT_MS = 10_000;

/** The goals of issue 25. */
export const GOAL_COMPLETED_FRACTION = 0.99;
export const GOAL_P50_RATIO = 2;
export const GOAL_RSS_GROWTH_MB = 256;

const MB = 1024 * 1024;
const RSS_SAMPLE_MS = 250;
const POLL_MS = 500;
/** The public list's largest page (GET /v1/providers?limit=). */
const PUBLIC_LIST_MAX = 500;

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (line: string): void => console.error(`p2p-attack: ${line}`);

/** Resident set size of a process (bytes), from /proc. */
function rssBytes(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Peer ids in the public provider list (online ones, largest page). */
async function publicPeerIds(apiUrl: string): Promise<Set<string>> {
  const res = await fetch(`${apiUrl}/v1/providers?limit=${PUBLIC_LIST_MAX}`, {
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`GET /v1/providers: HTTP ${res.status}`);
  return new Set(((await res.json()) as { peerId: string }[]).map((p) => p.peerId));
}

async function waitListed(
  apiUrl: string,
  peerIds: readonly string[],
  timeoutMs: number,
): Promise<number | null> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    const listed = await publicPeerIds(apiUrl).catch(() => new Set<string>());
    if (peerIds.every((p) => listed.has(p))) return Date.now() - started;
    await pause(POLL_MS);
  }
  return null;
}

/** Watches the public list for ghosts: peak count seen, and when none is left. */
interface GhostWatch {
  /**
   * Seconds from `since` to the first poll with no ghost listed after the last poll that listed one
   * (0 when none was ever listed); null when some are still listed when the watch ends.
   */
  result(): Promise<{ goneSeconds: number | null; peakListed: number; listedAtEnd: number }>;
}

/**
 * Polls the public list for the whole window (`capMs` from `since`): a ghost may show up late (its
 * advert is stored after a queue), so the first empty poll does not end the watch.
 */
function watchGhosts(apiUrl: string, ghosts: readonly Ghost[], since: number, capMs: number): GhostWatch {
  const ids = new Set(ghosts.map((g) => g.peerId));
  let peak = 0;
  let last = 0;
  let goneAt: number | undefined = since;
  const done = (async (): Promise<number | null> => {
    while (Date.now() - since <= capMs) {
      const listed = await publicPeerIds(apiUrl).catch(() => undefined);
      if (listed !== undefined) {
        last = [...listed].filter((p) => ids.has(p)).length;
        peak = Math.max(peak, last);
        if (last > 0) goneAt = undefined;
        else goneAt ??= Date.now();
      }
      await pause(POLL_MS);
    }
    return goneAt === undefined ? null : round((goneAt - since) / 1000, 1);
  })();
  return {
    result: async () => ({ goneSeconds: await done, peakListed: peak, listedAtEnd: last }),
  };
}

/** A running attack: what it reports once the phase's honest jobs have ended. */
interface RunningAttack {
  /** Attack-specific figures (offers taken, attempts lost to it, ...). */
  finish(db: pg.Client): Promise<Record<string, unknown>>;
  /** Ghost attacks: the ghost watch and the advert lifetime it is held to. */
  ghosts?: { watch: GhostWatch; ttlSeconds: number };
  stop(): Promise<void>;
}

interface PhaseContext {
  cluster: Cluster;
  coordinator: CoordinatorPeer;
  adminKey: string;
  db: pg.Client;
}

/** Attempts the coordinator made on these providers, by state. */
async function attemptsOn(db: pg.Client, peerIds: readonly string[]): Promise<Record<string, number>> {
  const r = await db.query<{ state: string; n: number }>(
    `SELECT state::text, count(*)::int AS n FROM "JobAttempt" WHERE "providerId" = ANY($1::text[]) GROUP BY state`,
    [peerIds],
  );
  return Object.fromEntries(r.rows.map((x) => [x.state, x.n]));
}

async function providerRow(
  db: pg.Client,
  peerId: string,
): Promise<{ status: string; reputation: number } | null> {
  const r = await db.query<{ status: string; reputation: number }>(
    `SELECT status::text, reputation FROM "Provider" WHERE "peerId" = $1`,
    [peerId],
  );
  return r.rows[0] ?? null;
}

/** A liar: one attacker node with a job behaviour, listed before the load starts. */
async function liar(ctx: PhaseContext, behaviour: JobBehaviour): Promise<RunningAttack> {
  const attacker = await startAttacker(ctx.coordinator, {
    behaviour,
    oversizeBytes: OVERSIZE_MB * MB,
    oversizeStreams: OVERSIZE_STREAMS,
  });
  const listedMs = await waitListed(ctx.cluster.apiUrl, [attacker.peerId], LISTED_TIMEOUT_MS);
  return {
    finish: async (db) => ({
      attackerListed: listedMs !== null,
      offersToAttacker: attacker.offers,
      attemptsOnAttacker: await attemptsOn(db, [attacker.peerId]),
      attackerAfter: await providerRow(db, attacker.peerId),
      attackerStillConnected: attacker.connected(),
    }),
    stop: () => attacker.stop(),
  };
}

async function ghostAttack(ctx: PhaseContext, count: number, wallets: number): Promise<RunningAttack> {
  const made = Date.now();
  const ghosts = await makeGhosts(count, wallets);
  const relay = await startGhostRelay(ctx.coordinator);
  const publishStarted = Date.now();
  const sent = await relay.publish(ghosts, { ttlMs: GHOST_TTL_S * 1000 });
  const published = Date.now();
  log(
    `${count} ghost adverts (${wallets} wallets) made in ${published - made} ms, published in ${published - publishStarted} ms`,
  );
  const watch = watchGhosts(
    ctx.cluster.apiUrl,
    ghosts,
    published,
    (GHOST_TTL_S + GHOST_WATCH_EXTRA_S) * 1000,
  );
  const ids = ghosts.map((g) => g.peerId);
  return {
    ghosts: { watch, ttlSeconds: GHOST_TTL_S },
    finish: async (db) => {
      const online = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM "Provider" WHERE "peerId" = ANY($1::text[]) AND status = 'ONLINE'`,
        [ids],
      );
      return {
        ghosts: count,
        ghostAdvertsSent: sent,
        publishSeconds: round((published - publishStarted) / 1000, 1),
        attemptsOnGhosts: await attemptsOn(db, ids),
        ghostRowsOnlineAtEnd: online.rows[0].n,
        relayStillConnected: relay.node.getPeers().some((p) => p.toString() === ctx.coordinator.peerId),
      };
    },
    stop: () => relay.stop(),
  };
}

async function connectionFlood(ctx: PhaseContext): Promise<RunningAttack> {
  const flood = await startConnectionFlood(ctx.coordinator, {
    connections: JUNK_CONNECTIONS,
    identities: JUNK_IDENTITIES,
    sockets: JUNK_SOCKETS,
  });
  const openedConnections = flood.openConnections();
  log(
    `${openedConnections}/${JUNK_CONNECTIONS} junk connections and ${flood.openSockets()} silent sockets open`,
  );
  // A new honest agent joins during the flood: can it still get in?
  const started = Date.now();
  const newcomer = (async (): Promise<{ listedSeconds: number | null; error?: string }> => {
    try {
      await ctx.cluster.startAgent(AGENTS, true);
      const peer = /gpumesh-agent ready: peer (\S+)/.exec(ctx.cluster.agents[AGENTS].output)?.[1];
      if (!peer) return { listedSeconds: null, error: 'the new agent printed no peer id' };
      const left = NEWCOMER_TIMEOUT_S * 1000 - (Date.now() - started);
      const ms = await waitListed(ctx.cluster.apiUrl, [peer], Math.max(0, left));
      return { listedSeconds: ms === null ? null : round((Date.now() - started) / 1000, 1) };
    } catch (err) {
      return { listedSeconds: null, error: (err instanceof Error ? err.message : String(err)).slice(0, 300) };
    }
  })();
  return {
    finish: async () => ({
      junkConnectionsOpened: openedConnections,
      junkConnectionsOpenAtEnd: flood.openConnections(),
      silentSocketsOpenAtEnd: flood.openSockets(),
      newcomer: await newcomer,
    }),
    stop: () => flood.stop(),
  };
}

async function bannedReconnect(ctx: PhaseContext): Promise<RunningAttack> {
  const first = await startAttacker(ctx.coordinator, { behaviour: 'stall' });
  const listedMs = await waitListed(ctx.cluster.apiUrl, [first.peerId], LISTED_TIMEOUT_MS);
  const ban = await fetch(`${ctx.cluster.apiUrl}/v1/admin/providers/${first.peerId}/ban`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ctx.adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ reason: 'p2p-attack bench: banned identity reconnecting' }),
  });
  if (!ban.ok) throw new Error(`BENCH_BAN_FAILED: POST /v1/admin/providers/:peerId/ban: HTTP ${ban.status}`);
  await pause(1_000);
  await first.stop();
  // Back with the same libp2p key and wallet, advertising again.
  let second: Attacker | undefined;
  let reconnectError: string | undefined;
  try {
    second = await startAttacker(ctx.coordinator, {
      behaviour: 'stall',
      privateKey: first.privateKey,
      wallet: first.wallet,
    });
  } catch (err) {
    reconnectError = (err instanceof Error ? err.message : String(err)).slice(0, 300);
  }
  await pause(2_000);
  const reconnected = second?.connected() ?? false;
  return {
    finish: async (db) => ({
      attackerListedBeforeBan: listedMs !== null,
      reconnected,
      stillConnectedAtEnd: second?.connected() ?? false,
      ...(reconnectError !== undefined && { reconnectError }),
      advertsAfterBan: second?.adverts ?? 0,
      offersAfterBan: second?.offers ?? 0,
      listedOnlineAfterBan: (await publicPeerIds(ctx.cluster.apiUrl)).has(first.peerId),
      attackerAfter: await providerRow(db, first.peerId),
    }),
    stop: async () => {
      await second?.stop();
    },
  };
}

async function strangerFetch(ctx: PhaseContext): Promise<RunningAttack> {
  const weights = randomBytes(ARTIFACT_KB * 1024);
  const modelJson = {
    modelTopology: {},
    weightsManifest: [
      { paths: ['w.bin'], weights: [{ name: 'k', shape: [weights.byteLength / 4], dtype: 'float32' }] },
    ],
  };
  const uploaded = await fetch(`${ctx.cluster.apiUrl}/v1/artifacts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ctx.cluster.devKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ format: 'layers', modelJson, weights: weights.toString('base64') }),
  });
  const body = (await uploaded.json()) as { hash?: string };
  if (!uploaded.ok || !body.hash)
    throw new Error(`BENCH_UPLOAD_FAILED: POST /v1/artifacts: HTTP ${uploaded.status}`);
  const fetcher = await startStrangerFetcher(ctx.coordinator, body.hash, FETCH_CONCURRENCY);
  return {
    finish: () =>
      Promise.resolve({
        artifactBytes: weights.byteLength,
        strangerFetchesServed: fetcher.served,
        strangerFetchesRefused: fetcher.refused,
        strangerBytesReceived: fetcher.bytes,
      }),
    stop: () => fetcher.stop(),
  };
}

function startAttack(name: AttackName, ctx: PhaseContext): Promise<RunningAttack> {
  switch (name) {
    case 'stalling-liar':
      return liar(ctx, 'stall');
    case 'non-serving-liar':
      return liar(ctx, 'non-serving');
    case 'half-frame-liar':
      return liar(ctx, 'half-frame');
    case 'oversize-results':
      return liar(ctx, 'oversize');
    case 'forged-receipts':
      return liar(ctx, 'forged-receipt');
    case 'ghost-relay':
      return ghostAttack(ctx, GHOSTS, GHOSTS);
    case 'advert-flood':
      return ghostAttack(ctx, FLOOD_ADVERTS, FLOOD_WALLETS);
    case 'connection-flood':
      return connectionFlood(ctx);
    case 'banned-reconnect':
      return bannedReconnect(ctx);
    case 'stranger-fetch':
      return strangerFetch(ctx);
  }
}

interface HonestFigures {
  submitted: number;
  accepted: number;
  completed: number;
  completedFraction: number;
  byState: Record<string, number>;
  /** p50 latency of the completed jobs. */
  p50Ms: number | null;
  p99Ms: number | null;
  /**
   * p50 latency of every submitted job, those that never completed counted as never finishing: null
   * when half of them or more did not complete. The goal compares this one with the clean run's.
   */
  p50AllMs: number | null;
}

/** Waits until none of `ids` is open (or the cap), then counts them and their latencies. */
async function honestFigures(
  db: pg.Client,
  ids: readonly string[],
  submitted: number,
): Promise<HonestFigures> {
  const until = Date.now() + (DEADLINE_S + DRAIN_GRACE_S) * 1000;
  for (;;) {
    const open = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM "Job" WHERE id = ANY($1::uuid[])
          AND state IN ('QUEUED', 'DISPATCHED', 'RUNNING', 'VERIFYING')`,
      [ids],
    );
    if (open.rows[0].n === 0 || Date.now() > until) break;
    await pause(POLL_MS);
  }
  const rows = await db.query<{ state: string; ms: number | null }>(
    `SELECT state::text, EXTRACT(EPOCH FROM ("finishedAt" - "createdAt")) * 1000 AS ms FROM "Job" WHERE id = ANY($1::uuid[])`,
    [ids],
  );
  const byState: Record<string, number> = {};
  const latencies: number[] = [];
  for (const r of rows.rows) {
    byState[r.state] = (byState[r.state] ?? 0) + 1;
    if (r.state === 'COMPLETED' && r.ms !== null) latencies.push(Number(r.ms));
  }
  latencies.sort((a, b) => a - b);
  const completed = byState.COMPLETED ?? 0;
  const median = Math.max(0, Math.ceil(submitted / 2) - 1);
  return {
    submitted,
    accepted: ids.length,
    completed,
    // Out of what the honest developer tried to submit: a refused submission is not a completed job.
    completedFraction: round(submitted === 0 ? 0 : completed / submitted, 4),
    byState,
    p50Ms: latencies.length ? round(percentile(latencies, 50), 1) : null,
    p99Ms: latencies.length ? round(percentile(latencies, 99), 1) : null,
    p50AllMs: median < latencies.length ? round(latencies[median], 1) : null,
  };
}

interface PhaseFigures {
  honest: HonestFigures;
  rssBeforeMB: number;
  rssPeakMB: number;
  rssGrowthMB: number;
  attack?: Record<string, unknown>;
  ghosts?: { ttlSeconds: number; goneSeconds: number | null; peakListed: number; listedAtEnd: number };
  seconds: number;
}

/** One phase on a fresh marketplace: the attack (none for the clean run) beside the honest load. */
async function runPhase(name: AttackName | 'clean'): Promise<PhaseFigures> {
  const started = Date.now();
  const database = await createBenchDatabase();
  const cluster = new Cluster({
    databaseUrl: database.url,
    redisUrl: BENCH_REDIS_URL,
    agents: AGENTS,
    roleAll: true,
    parallelAgents: true,
    // As deployed: new providers (honest agents and liars alike) are measured by capacity probes.
    env: { CAPACITY_PROBES: 'true' },
    log,
  });
  const db = new pg.Client({ connectionString: database.url });
  let attack: RunningAttack | undefined;
  try {
    await cluster.start();
    await db.connect();
    const coordinator = await coordinatorPeer(cluster.apiUrl);
    const adminKey = /admin key\s+(gmk_\S+)/.exec(cluster.api.output)?.[1] ?? '';
    const until = Date.now() + 30_000;
    while ((await publicPeerIds(cluster.apiUrl)).size < AGENTS) {
      if (Date.now() > until) throw new Error(`BENCH_AGENTS_NOT_LISTED: fewer than ${AGENTS} agents listed`);
      await pause(POLL_MS);
    }
    // Warm-up jobs first (unmeasured): the first jobs of a fresh coordinator pay for its cold start.
    if (WARMUP_JOBS > 0) {
      const warm = await submitUntil(cluster, {
        concurrency: 4,
        total: WARMUP_JOBS,
        deadlineSeconds: DEADLINE_S,
        runId: `warmup-${randomBytes(4).toString('hex')}`,
      }).finished();
      await honestFigures(db, warm.accepted, WARMUP_JOBS);
    }
    const pid = cluster.api.child.pid;
    const rssBefore = rssBytes(pid);
    let rssPeak = rssBefore;
    const sampler = setInterval(() => {
      rssPeak = Math.max(rssPeak, rssBytes(pid));
    }, RSS_SAMPLE_MS);
    try {
      if (name !== 'clean') {
        attack = await startAttack(name, { cluster, coordinator, adminKey, db });
      }
      const total = Math.max(1, Math.round(RATE * LOAD_SECONDS));
      const load = submitUntil(cluster, {
        concurrency: 4,
        total,
        ratePerSecond: RATE,
        deadlineSeconds: DEADLINE_S,
        runId: `${name}-${randomBytes(4).toString('hex')}`,
      });
      const submitted = await load.finished();
      const honest = await honestFigures(db, submitted.accepted, total);
      const ghosts = attack?.ghosts
        ? { ttlSeconds: attack.ghosts.ttlSeconds, ...(await attack.ghosts.watch.result()) }
        : undefined;
      const figures = attack ? await attack.finish(db) : undefined;
      rssPeak = Math.max(rssPeak, rssBytes(pid));
      return {
        honest,
        rssBeforeMB: round(rssBefore / MB, 1),
        rssPeakMB: round(rssPeak / MB, 1),
        rssGrowthMB: round((rssPeak - rssBefore) / MB, 1),
        ...(figures && { attack: figures }),
        ...(ghosts && { ghosts }),
        seconds: round((Date.now() - started) / 1000, 1),
      };
    } finally {
      clearInterval(sampler);
    }
  } finally {
    await attack?.stop().catch((err: unknown) => log(`stopping ${name}: ${String(err)}`));
    await db.end().catch(() => undefined);
    await cluster.stop();
    await database.drop();
  }
}

interface Goal {
  value: number | null;
  goal: string;
  pass: boolean;
}

function goalsOf(phase: PhaseFigures, cleanP50: number | null): Record<string, Goal> {
  const ratio =
    phase.honest.p50AllMs !== null && cleanP50 ? round(phase.honest.p50AllMs / cleanP50, 2) : null;
  const goals: Record<string, Goal> = {
    completedFraction: {
      value: phase.honest.completedFraction,
      goal: `>= ${GOAL_COMPLETED_FRACTION}`,
      pass: phase.honest.completedFraction >= GOAL_COMPLETED_FRACTION,
    },
    p50RatioToClean: {
      value: ratio,
      goal: `<= ${GOAL_P50_RATIO}`,
      pass: ratio !== null && ratio <= GOAL_P50_RATIO,
    },
    rssGrowthMB: {
      value: phase.rssGrowthMB,
      goal: `<= ${GOAL_RSS_GROWTH_MB}`,
      pass: phase.rssGrowthMB <= GOAL_RSS_GROWTH_MB,
    },
  };
  if (phase.ghosts) {
    goals.ghostsGoneSeconds = {
      value: phase.ghosts.goneSeconds,
      goal: `<= ${phase.ghosts.ttlSeconds} (advert lifetime)`,
      pass: phase.ghosts.goneSeconds !== null && phase.ghosts.goneSeconds <= phase.ghosts.ttlSeconds,
    };
  }
  return goals;
}

const cell = (v: number | null | undefined, width: number): string => String(v ?? '—').padStart(width);

export async function run(): Promise<Record<string, unknown>> {
  const attacks = selectedAttacks();
  log(
    `clean run, then ${attacks.join(', ')} (${RATE} jobs/s for ${LOAD_SECONDS} s each, deadline ${DEADLINE_S} s)`,
  );
  const clean = await runPhase('clean');
  log(`clean: ${JSON.stringify(clean.honest)}`);
  const cleanP50 = clean.honest.p50AllMs;
  const results: Record<string, unknown> = {};
  const verdicts: { name: string; phase?: PhaseFigures; goals?: Record<string, Goal>; error?: string }[] = [];
  for (const name of attacks) {
    log(`attack ${name} ...`);
    try {
      const phase = await runPhase(name);
      const goals = goalsOf(phase, cleanP50);
      const passed = Object.values(goals).every((g) => g.pass);
      results[name] = { passed, goals, ...phase };
      verdicts.push({ name, phase, goals });
      log(`${name}: ${passed ? 'PASS' : 'FAIL'} ${JSON.stringify(goals)}`);
    } catch (err) {
      const error = (err instanceof Error ? err.message : String(err)).slice(0, 2000);
      results[name] = { passed: false, error };
      verdicts.push({ name, error });
      log(`${name}: ERROR ${error}`);
    }
  }

  // The verdict table, one line per attack and goal.
  const lines = [
    `clean run: ${clean.honest.completed}/${clean.honest.submitted} completed, p50 ${cleanP50 ?? '—'} ms, RSS +${clean.rssGrowthMB} MB`,
    `${'attack'.padEnd(18)} ${'completed'.padStart(9)} ${'p50 ms'.padStart(8)} ${'×clean'.padStart(7)} ${'RSS +MB'.padStart(8)} ${'ghosts gone s'.padStart(13)}  verdict`,
  ];
  for (const v of verdicts) {
    if (v.error !== undefined || !v.phase || !v.goals) {
      lines.push(`${v.name.padEnd(18)} ERROR ${v.error ?? ''}`);
      continue;
    }
    const g = v.goals;
    const failed = Object.entries(g)
      .filter(([, x]) => !x.pass)
      .map(([k]) => k);
    lines.push(
      `${v.name.padEnd(18)} ${cell(g.completedFraction.value, 9)} ${cell(v.phase.honest.p50AllMs, 8)} ${cell(g.p50RatioToClean.value, 7)} ${cell(g.rssGrowthMB.value, 8)} ${g.ghostsGoneSeconds ? cell(g.ghostsGoneSeconds.value, 13) : ''.padStart(13)}  ${failed.length === 0 ? 'PASS' : `FAIL (${failed.join(', ')})`}`,
    );
  }
  lines.push(
    `goals: completed >= ${GOAL_COMPLETED_FRACTION}, p50 <= ${GOAL_P50_RATIO}× clean, RSS growth <= ${GOAL_RSS_GROWTH_MB} MB, ghosts gone within one advert lifetime (${GHOST_TTL_S} s)`,
  );
  for (const line of lines) log(line);

  const passedAttacks = verdicts.filter((v) => v.goals && Object.values(v.goals).every((g) => g.pass)).length;
  return {
    settings: {
      agents: AGENTS,
      jobsPerSecond: RATE,
      loadSeconds: LOAD_SECONDS,
      deadlineSeconds: DEADLINE_S,
      ghosts: GHOSTS,
      floodAdverts: FLOOD_ADVERTS,
      ghostAdvertTtlSeconds: GHOST_TTL_S,
      junkConnections: JUNK_CONNECTIONS,
      junkIdentities: JUNK_IDENTITIES,
      silentSockets: JUNK_SOCKETS,
      oversizeMB: OVERSIZE_MB,
      oversizeStreams: OVERSIZE_STREAMS,
      artifactKB: ARTIFACT_KB,
    },
    goals: {
      completedFraction: GOAL_COMPLETED_FRACTION,
      p50RatioToClean: GOAL_P50_RATIO,
      rssGrowthMB: GOAL_RSS_GROWTH_MB,
      ghostsGoneWithinAdvertLifetimeSeconds: GHOST_TTL_S,
    },
    clean,
    attacks: results,
    attacksRun: attacks.length,
    attacksPassed: passedAttacks,
    allPassed: passedAttacks === attacks.length,
    verdict: lines,
  };
}
