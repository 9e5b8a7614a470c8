import { Injectable, OnModuleDestroy } from '@nestjs/common';
import type { ReputationEvent } from '#prisma';
import { PrismaService } from '../database/prisma.service.js';
import { SqlService, jsonText, type SqlRunner } from '../database/sql.service.js';
import { GroupCommit } from '../common/group-commit.js';

export interface ReputationChange {
  peerId: string;
  kind: string;
  jobId?: string;
  detail?: Record<string, unknown>;
  /**
   * The new score from the stored one, the time of the provider's last reputation event and, for a
   * change that `disproves` a claim, when its earlier disproved claims were recorded (the newest
   * EARLIER_CLAIMS_READ; else empty).
   */
  next: (stored: number, lastEventAt: Date | null, earlierClaims: readonly Date[]) => number;
  /**
   * The input-fault claim this change penalises, recorded (DisprovedClaim) in the same transaction:
   * a claim already recorded applies nothing (null), so however often it is asked for (a dispatch
   * re-delivered after a crash, a second verification) the claim costs its provider once.
   */
  disproves?: DisprovedClaimRecord;
  /** Ban the provider in the same transaction (status, bannedAt, banReason). */
  ban?: string;
  /** Lift a ban in the same transaction. */
  lift?: boolean;
}

export interface DisprovedClaimRecord {
  attemptId: string;
  jobId: string;
  /** The provider's error as its attempt recorded it. */
  claim: string;
}

export interface ReputationOutcome {
  score: number;
  delta: number;
  /** The provider was banned by this change (it was not before). */
  banned: boolean;
  address: string;
}

/** Most changes committed together, and batches committing at once. */
const MAX_CHANGE_BATCH = 256;
const MAX_BATCHES_IN_FLIGHT = 2;
/** How long a routine reputation change may wait to share a transaction. */
const ROUTINE_CHANGE_LINGER_MS = 100;
/**
 * A provider's newest disproved claims a change that disproves another one is given (older ones
 * weigh next to nothing after the score's decay, and the weight is capped anyway).
 */
export const EARLIER_CLAIMS_READ = 64;

/**
 * Provider.reputation and the append-only ReputationEvent history. Concurrent changes share one
 * transaction (every completed job records one, so this is on the hot path): the providers' rows are
 * locked in one order, the changes applied in the order asked, and each provider written once.
 */
@Injectable()
export class ReputationRepository implements OnModuleDestroy {
  private readonly changes: GroupCommit<ReputationChange, ReputationOutcome | null>;

  constructor(
    private readonly prisma: PrismaService,
    private readonly sql: SqlService,
  ) {
    this.changes = new GroupCommit({
      commit: (batch) => this.sql.transaction((tx) => this.applyBatch(tx, batch)),
      key: (change) => change.peerId,
      maxBatch: MAX_CHANGE_BATCH,
      maxInFlight: MAX_BATCHES_IN_FLIGHT,
      // Routine score changes (one per completed job) wait briefly for company: one transaction for
      // many. A ban or a lifted ban goes at once, taking any waiting changes along.
      lingerMs: ROUTINE_CHANGE_LINGER_MS,
      mayLinger: (change) => change.ban === undefined && !change.lift,
    });
  }

  /** Waiting changes are committed before the database pool closes. */
  async onModuleDestroy(): Promise<void> {
    await this.changes.drain();
  }

  /** Applies one change under a lock of the provider row; null when the provider is unknown. */
  apply(change: ReputationChange): Promise<ReputationOutcome | null> {
    return this.changes.submit(change);
  }

  private async applyBatch(tx: SqlRunner, batch: ReputationChange[]): Promise<(ReputationOutcome | null)[]> {
    const peers = [...new Set(batch.map((c) => c.peerId))].sort();
    // NO KEY UPDATE: serialises reputation writers without blocking the JobAttempt inserts that
    // reference these rows (their foreign-key check takes KEY SHARE, which FOR UPDATE would block).
    // Each provider's latest event comes through the (peerId, id) index: a LIMIT 1 per provider.
    const rows = await tx.query<{
      peerId: string;
      reputation: number;
      status: string;
      address: string;
      lastAt: Date | null;
    }>(
      `SELECT p."peerId", p.reputation, p.status::text AS status, p.address, e."createdAt" AS "lastAt"
         FROM "Provider" p
         LEFT JOIN LATERAL (SELECT r."createdAt" FROM "ReputationEvent" r
                             WHERE r."peerId" = p."peerId" ORDER BY r.id DESC LIMIT 1) e ON true
        WHERE p."peerId" = ANY($1::text[]) ORDER BY p."peerId" FOR NO KEY UPDATE OF p`,
      [peers],
    );
    interface Provider {
      reputation: number;
      status: string;
      address: string;
      lastAt: Date | null;
      touched: boolean;
      /** A ban set or lifted by this batch. */
      banChange?: { status: 'BANNED' | 'ONLINE'; bannedAt: Date | null; banReason: string | null };
    }
    const providers = new Map<string, Provider>(
      rows.map((r) => [
        r.peerId,
        {
          reputation: r.reputation,
          status: r.status,
          address: r.address,
          lastAt: r.lastAt,
          touched: false,
        },
      ]),
    );
    const now = new Date();
    // Read after the provider locks: a batch recording the same claim has committed (or waits).
    const { recorded, earlierClaims } = await this.claimsOf(tx, batch);
    const claims: (DisprovedClaimRecord & { peerId: string; delta: number })[] = [];
    const events: {
      peerId: string;
      kind: string;
      delta: number;
      score: number;
      jobId: string | null;
      detail: string | null;
    }[] = [];
    const outcomes = batch.map((change): ReputationOutcome | null => {
      const p = providers.get(change.peerId);
      if (!p) return null;
      if (change.disproves) {
        if (recorded.has(change.disproves.attemptId)) return null; // counted already
        recorded.add(change.disproves.attemptId);
      }
      const earlier = earlierClaims.get(change.peerId) ?? [];
      const score = change.next(p.reputation, p.lastAt, change.disproves ? earlier : []);
      if (change.disproves) {
        claims.push({ ...change.disproves, peerId: change.peerId, delta: score - p.reputation });
        earlierClaims.set(change.peerId, [...earlier, now]);
      }
      const banned = change.ban !== undefined && p.status !== 'BANNED';
      events.push({
        peerId: change.peerId,
        kind: change.kind,
        delta: score - p.reputation,
        score,
        jobId: change.jobId ?? null,
        detail: change.detail === undefined ? null : jsonText(change.detail),
      });
      const outcome = { score, delta: score - p.reputation, banned, address: p.address };
      p.reputation = score;
      p.lastAt = now;
      p.touched = true;
      if (banned) {
        p.status = 'BANNED';
        p.banChange = { status: 'BANNED', bannedAt: now, banReason: change.ban?.slice(0, 500) ?? null };
      }
      if (change.lift) {
        p.status = 'ONLINE';
        p.banChange = { status: 'ONLINE', bannedAt: null, banReason: null };
      }
      return outcome;
    });
    const touched = [...providers].filter(([, p]) => p.touched);
    // A claim recorded twice fails the batch on the primary key rather than count twice.
    const recordClaims =
      claims.length > 0
        ? tx.query(
            `INSERT INTO "DisprovedClaim" ("attemptId", "jobId", "peerId", claim, delta, "createdAt")
             SELECT attempt, job, peer, claim, delta, $6::timestamptz
               FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::float8[])
                    AS c(attempt, job, peer, claim, delta)`,
            [
              claims.map((c) => c.attemptId),
              claims.map((c) => c.jobId),
              claims.map((c) => c.peerId),
              claims.map((c) => c.claim.slice(0, 2000)),
              claims.map((c) => c.delta),
              now.toISOString(),
            ],
          )
        : Promise.resolve([]);
    // Events (in the order asked) and each provider's one update, in one statement.
    const recordChanges = tx.query(
      `WITH events AS (
         INSERT INTO "ReputationEvent" ("peerId", kind, delta, score, "jobId", detail, "createdAt")
         SELECT peer, kind, delta, score, job, detail::jsonb, $7
           FROM unnest($1::text[], $2::text[], $3::float8[], $4::float8[], $5::uuid[], $6::text[]) WITH ORDINALITY
                AS e(peer, kind, delta, score, job, detail, n)
          ORDER BY n
         RETURNING 1
       )
       UPDATE "Provider" p
          SET reputation = u.reputation, "updatedAt" = $7,
              status = CASE WHEN u.ban_change THEN u.status::"ProviderStatus" ELSE p.status END,
              "bannedAt" = CASE WHEN u.ban_change THEN u.banned_at ELSE p."bannedAt" END,
              "banReason" = CASE WHEN u.ban_change THEN u.ban_reason ELSE p."banReason" END
         FROM unnest($8::text[], $9::float8[], $10::bool[], $11::text[], $12::timestamptz[], $13::text[])
              AS u(peer, reputation, ban_change, status, banned_at, ban_reason)
        WHERE p."peerId" = u.peer`,
      [
        events.map((e) => e.peerId),
        events.map((e) => e.kind),
        events.map((e) => e.delta),
        events.map((e) => e.score),
        events.map((e) => e.jobId),
        events.map((e) => e.detail),
        now.toISOString(),
        touched.map(([peerId]) => peerId),
        touched.map(([, p]) => p.reputation),
        touched.map(([, p]) => p.banChange !== undefined),
        touched.map(([, p]) => p.banChange?.status ?? null),
        touched.map(([, p]) => p.banChange?.bannedAt?.toISOString() ?? null),
        touched.map(([, p]) => p.banChange?.banReason ?? null),
      ],
    );
    await Promise.all([recordClaims, recordChanges]);
    return outcomes;
  }

  /**
   * For a batch with changes that disprove claims: which of those claims are recorded already, and
   * when each of their providers' newest EARLIER_CLAIMS_READ claims were (empty for other batches).
   */
  private async claimsOf(
    tx: SqlRunner,
    batch: readonly ReputationChange[],
  ): Promise<{ recorded: Set<string>; earlierClaims: Map<string, Date[]> }> {
    const disproving = batch.filter((c) => c.disproves !== undefined);
    if (disproving.length === 0) return { recorded: new Set(), earlierClaims: new Map() };
    const [known, earlier] = await Promise.all([
      tx.query<{ attemptId: string }>(
        `SELECT "attemptId"::text AS "attemptId" FROM "DisprovedClaim" WHERE "attemptId" = ANY($1::uuid[])`,
        [disproving.map((c) => c.disproves?.attemptId)],
      ),
      tx.query<{ peerId: string; createdAt: Date }>(
        `SELECT p.peer AS "peerId", c."createdAt"
           FROM unnest($1::text[]) AS p(peer)
           CROSS JOIN LATERAL (SELECT d."createdAt" FROM "DisprovedClaim" d WHERE d."peerId" = p.peer
                                ORDER BY d."createdAt" DESC LIMIT $2) c`,
        [[...new Set(disproving.map((c) => c.peerId))], EARLIER_CLAIMS_READ],
      ),
    ]);
    const earlierClaims = new Map<string, Date[]>();
    for (const row of earlier)
      earlierClaims.set(row.peerId, [...(earlierClaims.get(row.peerId) ?? []), row.createdAt]);
    return { recorded: new Set(known.map((r) => r.attemptId)), earlierClaims };
  }

  history(peerId: string, limit: number): Promise<ReputationEvent[]> {
    return this.prisma.reputationEvent.findMany({ where: { peerId }, orderBy: { id: 'desc' }, take: limit });
  }

  /** The score a provider had just before the last change that banned it, or null when none did. */
  async scoreBeforeLastBan(peerId: string, banKinds: readonly string[]): Promise<number | null> {
    const ban = await this.prisma.reputationEvent.findFirst({
      where: { peerId, kind: { in: [...banKinds] } },
      orderBy: { id: 'desc' },
      select: { score: true, delta: true },
    });
    return ban ? ban.score - ban.delta : null;
  }

  async isBanned(peerId: string): Promise<boolean> {
    const row = await this.prisma.provider.findUnique({ where: { peerId }, select: { status: true } });
    return row?.status === 'BANNED';
  }
}
