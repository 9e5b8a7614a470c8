import { ReplayGuard, type EpochAnnouncement, type ProviderAdvert, type Signed } from '@gpumesh/protocol';
import { TopicValidatorResult, type GossipSub, type GossipsubMessage } from '@libp2p/gossipsub';
import { peerIdFromString } from '@libp2p/peer-id';
import type { Libp2p } from 'libp2p';

import {
  encodeGossipPayload,
  gossipTopicOf,
  gossipTypeOfTopic,
  type GossipPayloads,
  type GossipType,
} from './gossip-topics.js';
import {
  GossipValidationError,
  validateAdvertGossip,
  validateEpochAnnouncementGossip,
  type GossipErrorCode,
  type GossipMessageInput,
} from './gossip-validation.js';
import {
  ADVERT_ORIGIN_BURST,
  ADVERT_ORIGIN_RATE_PER_SECOND,
  EPOCH_ANNOUNCEMENT_ORIGIN_BURST,
  EPOCH_ANNOUNCEMENT_ORIGIN_RATE_PER_SECOND,
  GOSSIP_RELAY_BURST,
  GOSSIP_RELAY_RATE_PER_SECOND,
  KeyedTokenBuckets,
  OffenceMeter,
  type TokenBucketOptions,
} from './gossip-rate-limit.js';
import type { GpumeshNode } from './node.js';
import { PeerAction, PeerScoreStore, type ScoreState } from './peer-score.js';

export type GossipVerdict = 'ACCEPT' | 'IGNORE' | 'REJECT';

/** Label values of one validation outcome (`gpumesh_gossip_messages_total{topic,verdict,code}`). */
export interface GossipValidationLabels {
  readonly topic: string;
  readonly verdict: GossipVerdict;
  readonly code: GossipErrorCode | 'OK';
}

/** Metric callbacks of the gossip adapter; wire them to prom-client counters. */
export interface GossipMetrics {
  onValidation(labels: GossipValidationLabels): void;
  /** Seconds from receipt to verdict. */
  onValidationDuration?(topic: string, seconds: number): void;
}

/** In-memory `GossipMetrics` (tests, status output). */
export class GossipValidationCounter implements GossipMetrics {
  private readonly counts = new Map<string, number>();

  onValidation(labels: GossipValidationLabels): void {
    const key = `${labels.topic}|${labels.verdict}|${labels.code}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  /** Count for one label set; `code` omitted sums over codes. */
  get(topic: string, verdict: GossipVerdict, code?: GossipErrorCode | 'OK'): number {
    let total = 0;
    for (const [key, n] of this.counts) {
      const [t, v, c] = key.split('|');
      if (t === topic && v === verdict && (code === undefined || c === code)) total += n;
    }
    return total;
  }

  entries(): (GossipValidationLabels & { count: number })[] {
    return [...this.counts].map(([key, count]) => {
      const [topic, verdict, code] = key.split('|');
      return { topic, verdict: verdict as GossipVerdict, code: code as GossipErrorCode | 'OK', count };
    });
  }
}

/**
 * Penalty of each rejection code. Ignored messages cost nothing (late, early, duplicate: an honest
 * peer can send them) except replays, which are cheap to detect and only bad when repeated.
 */
export const GOSSIP_PENALTY_BY_CODE: Readonly<Partial<Record<GossipErrorCode, PeerAction>>> = {
  BAD_SIGNATURE: PeerAction.LowToleranceError,
  SIGNER_MISMATCH: PeerAction.LowToleranceError,
  BAD_PEER_BINDING: PeerAction.LowToleranceError,
  PEER_ID_MISMATCH: PeerAction.LowToleranceError,
  UNSIGNED_MESSAGE: PeerAction.LowToleranceError,
  INVALID_MESSAGE: PeerAction.MidToleranceError,
  INVALID_TENSOR: PeerAction.MidToleranceError,
  TENSOR_TOO_LARGE: PeerAction.MidToleranceError,
  NON_CANONICAL_VALUE: PeerAction.MidToleranceError,
  INVALID_MODEL: PeerAction.MidToleranceError,
  ADVERT_OUT_OF_RANGE: PeerAction.MidToleranceError,
  MESSAGE_TOO_LARGE: PeerAction.MidToleranceError,
  UNDECODABLE: PeerAction.MidToleranceError,
  UNKNOWN_TOPIC: PeerAction.MidToleranceError,
  REPLAY: PeerAction.HighToleranceError,
};

/** Rate-limit code of each message type's origin bucket. */
const ORIGIN_RATE_LIMITED_MESSAGE: Readonly<Record<GossipType, string>> = {
  advert: 'advertises too fast',
  epoch: 'announces epochs too fast',
};

/**
 * Penalty of each offence beyond the forgiven burst (see `OffenceMeter`): a relayer that keeps
 * delivering adverts of peers not connected here (ghosts) pays more than a peer that is only fast.
 */
export const GOSSIP_OFFENCE_PENALTY: Readonly<Partial<Record<GossipErrorCode, PeerAction>>> = {
  ORIGIN_NOT_CONNECTED: PeerAction.MidToleranceError,
  ORIGIN_RATE_LIMITED: PeerAction.HighToleranceError,
  RELAY_RATE_LIMITED: PeerAction.HighToleranceError,
};

/** Rate limits of received gossip; each defaults to the named constants of gossip-rate-limit.ts. */
export interface GossipRateLimits {
  /** Adverts accepted per origin peer. */
  readonly advertOrigin?: TokenBucketOptions;
  /** Epoch announcements accepted per origin peer. */
  readonly epochOrigin?: TokenBucketOptions;
  /** Messages accepted per relaying connection (propagation source). */
  readonly relay?: TokenBucketOptions;
  /** Offences forgiven per peer before each costs a penalty. */
  readonly offences?: Partial<TokenBucketOptions>;
}

export interface GossipMessageMeta {
  /** Peer that created (and gossipsub-signed) the message. */
  readonly from: string;
  /** Peer that delivered it to us. */
  readonly propagationSource: string;
  readonly msgId: string;
  readonly receivedAt: number;
}

/** One typed handler per message type; only accepted messages reach it. */
export type GossipHandlers = {
  readonly [T in GossipType]?: (payload: GossipPayloads[T], meta: GossipMessageMeta) => void | Promise<void>;
};

/** One validation function per message type: returns the payload or throws `GossipValidationError`. */
export type GossipValidators = {
  readonly [T in GossipType]: (message: GossipMessageInput) => GossipPayloads[T];
};

/** Structured logger (pino-compatible subset). */
export interface P2pLogger {
  debug(context: object, message: string): void;
  warn(context: object, message: string): void;
}

const SILENT_LOGGER: P2pLogger = { debug: () => undefined, warn: () => undefined };

export interface StartGossipOptions {
  /** Types with a handler are subscribed to; the others can still be published. */
  readonly handlers?: GossipHandlers;
  readonly peerScore?: PeerScoreStore;
  readonly metrics?: GossipMetrics;
  /** Replay guard for advert `seq`s; a fresh one when absent. */
  readonly replayGuard?: ReplayGuard;
  /** Whose epoch announcements are accepted (see `validateEpochAnnouncementGossip`); any signer when absent. */
  readonly isTrustedEpochAnnouncer?: (signer: string) => boolean;
  /** Replace the default validators (tests). */
  readonly validators?: Partial<GossipValidators>;
  readonly logger?: P2pLogger;
  readonly now?: () => number;
  /**
   * Gossip created or relayed by these peers is ignored; defaults to the score store's bans. A node
   * with a connection gater passes the same predicate to both.
   */
  readonly isPeerDenied?: (peerId: string) => boolean;
  /**
   * Accept an advert only when its origin is directly connected to this node (a coordinator places
   * work only on peers it can reach): others are ignored (`ORIGIN_NOT_CONNECTED`) and a relayer that
   * keeps sending them is penalised.
   */
  readonly requireConnectedOrigin?: boolean;
  /** Called with the origin of every accepted advert that is directly connected: it presented a peer binding. */
  readonly onPeerBound?: (peerId: string) => void;
  readonly rateLimits?: GossipRateLimits;
}

export interface GossipService {
  readonly peerScore: PeerScoreStore;
  /** Publishes a payload on its type's topic; resolves the number of peers it was sent to. */
  publish<T extends GossipType>(type: T, payload: GossipPayloads[T]): Promise<number>;
  publishAdvert(advert: Signed<ProviderAdvert>): Promise<number>;
  publishEpochAnnouncement(announcement: Signed<EpochAnnouncement>): Promise<number>;
  /** Peers subscribed to a type's topic. */
  topicPeers(type: GossipType): string[];
  stop(): void;
}

interface AsyncValidationReporter {
  reportMessageValidationResult(
    msgId: string,
    propagationSource: string,
    acceptance: TopicValidatorResult,
  ): void;
}

/** The router's validation callback (on the gossipsub class, not on its public interface type). */
function validationReporter(pubsub: GossipSub): AsyncValidationReporter['reportMessageValidationResult'] {
  const router = pubsub as GossipSub & Partial<AsyncValidationReporter>;
  const report = router.reportMessageValidationResult;
  if (typeof report !== 'function') throw new Error('gossipsub router has no reportMessageValidationResult');
  return (msgId, source, acceptance) => report.call(router, msgId, source, acceptance);
}

const RESULT_BY_VERDICT: Readonly<Record<GossipVerdict, TopicValidatorResult>> = {
  ACCEPT: TopicValidatorResult.Accept,
  IGNORE: TopicValidatorResult.Ignore,
  REJECT: TopicValidatorResult.Reject,
};

/** Applies a penalty and hangs up on the peer once it crosses the disconnect threshold. */
export function penalizePeer(
  node: Libp2p,
  peerScore: PeerScoreStore,
  peerId: string,
  action: PeerAction,
  reason: string,
): ScoreState {
  const state = peerScore.applyAction(peerId, action, reason);
  if (state !== 'healthy') {
    node.hangUp(peerIdFromString(peerId)).catch(() => undefined);
  }
  return state;
}

/**
 * Wires gossip: subscribes to the topics that have handlers, validates every message with its
 * type's validator, maps the outcome to a router verdict (one adapter, like lodestar's
 * `gossipValidatorFn`), counts it, penalises rejected senders, and hands accepted payloads to the
 * typed handler.
 */
export function startGossip(node: GpumeshNode, options: StartGossipOptions = {}): GossipService {
  const pubsub = node.services.pubsub;
  const report = validationReporter(pubsub);
  const logger = options.logger ?? SILENT_LOGGER;
  const now = options.now ?? Date.now;
  const peerScore = options.peerScore ?? new PeerScoreStore();
  const replayGuard = options.replayGuard ?? new ReplayGuard();
  // Announcements count their own seqs: a coordinator's wallet could also sign other series.
  const epochReplayGuard = new ReplayGuard();
  const validators: GossipValidators = {
    advert: (message) => validateAdvertGossip({ replayGuard, now }, message),
    epoch: (message) =>
      validateEpochAnnouncementGossip(
        {
          replayGuard: epochReplayGuard,
          now,
          ...(options.isTrustedEpochAnnouncer !== undefined
            ? { isTrustedAnnouncer: options.isTrustedEpochAnnouncer }
            : {}),
        },
        message,
      ),
    ...options.validators,
  };
  const handlers = options.handlers ?? {};
  const subscribed = new Set<string>();
  const isDenied = options.isPeerDenied ?? ((peer: string) => peerScore.isBanned(peer));
  const originBuckets: Readonly<Record<GossipType, KeyedTokenBuckets>> = {
    advert: new KeyedTokenBuckets(
      options.rateLimits?.advertOrigin ?? {
        ratePerSecond: ADVERT_ORIGIN_RATE_PER_SECOND,
        burst: ADVERT_ORIGIN_BURST,
      },
    ),
    epoch: new KeyedTokenBuckets(
      options.rateLimits?.epochOrigin ?? {
        ratePerSecond: EPOCH_ANNOUNCEMENT_ORIGIN_RATE_PER_SECOND,
        burst: EPOCH_ANNOUNCEMENT_ORIGIN_BURST,
      },
    ),
  };
  const relayBuckets = new KeyedTokenBuckets(
    options.rateLimits?.relay ?? { ratePerSecond: GOSSIP_RELAY_RATE_PER_SECOND, burst: GOSSIP_RELAY_BURST },
  );
  const offences = new OffenceMeter(options.rateLimits?.offences);

  async function deliver<T extends GossipType>(
    type: T,
    payload: GossipPayloads[T],
    meta: GossipMessageMeta,
  ): Promise<void> {
    const handler = handlers[type] as
      ((p: GossipPayloads[T], m: GossipMessageMeta) => void | Promise<void>) | undefined;
    if (handler === undefined) return;
    try {
      await handler(payload, meta);
    } catch (err) {
      logger.warn({ type, msgId: meta.msgId, err: String(err) }, 'gossip handler failed');
    }
  }

  function validate<T extends GossipType>(type: T, input: GossipMessageInput): GossipPayloads[T] {
    return (validators[type] as (m: GossipMessageInput) => GossipPayloads[T])(input);
  }

  /** Cheap checks before any signature is verified: bans, rates, a connected origin. */
  function admit(type: GossipType, source: string, msg: GossipsubMessage['msg']): void {
    const origin = msg.type === 'signed' ? msg.from : undefined;
    const originId = origin?.toString();
    if (isDenied(source) || (originId !== undefined && isDenied(originId))) {
      throw new GossipValidationError('IGNORE', 'PEER_BANNED', `peer ${source} is banned`);
    }
    const at = now();
    if (!relayBuckets.take(source, at)) {
      throw new GossipValidationError('IGNORE', 'RELAY_RATE_LIMITED', `peer ${source} relays too fast`);
    }
    if (origin === undefined || originId === undefined) return;
    if (
      type === 'advert' &&
      options.requireConnectedOrigin === true &&
      originId !== source &&
      node.getConnections(origin).length === 0
    ) {
      throw new GossipValidationError(
        'IGNORE',
        'ORIGIN_NOT_CONNECTED',
        `advert of ${originId} relayed by ${source}: the origin is not connected here`,
      );
    }
    if (!originBuckets[type].take(originId, at)) {
      throw new GossipValidationError(
        'IGNORE',
        'ORIGIN_RATE_LIMITED',
        `peer ${originId} ${ORIGIN_RATE_LIMITED_MESSAGE[type]}`,
      );
    }
  }

  /** The peer and penalty a verdict costs, if any. */
  function penaltyOf(
    code: GossipErrorCode,
    source: string,
    from: string | undefined,
  ): [string, PeerAction] | undefined {
    const offence = GOSSIP_OFFENCE_PENALTY[code];
    if (offence !== undefined) {
      // an origin over its rate signed every message itself; the others are the relayer's doing
      const offender = code === 'ORIGIN_RATE_LIMITED' && from !== undefined ? from : source;
      return offences.offend(offender, now()) ? [offender, offence] : undefined;
    }
    const action = GOSSIP_PENALTY_BY_CODE[code];
    return action === undefined ? undefined : [source, action];
  }

  const onMessage = (event: CustomEvent<GossipsubMessage>): void => {
    const { propagationSource, msgId, msg } = event.detail;
    const started = performance.now();
    const source = propagationSource.toString();
    const from = msg.type === 'signed' ? msg.from.toString() : undefined;
    const type = gossipTypeOfTopic(msg.topic);
    let verdict: GossipVerdict = 'ACCEPT';
    let code: GossipErrorCode | 'OK' = 'OK';
    let payload: GossipPayloads[GossipType] | undefined;
    try {
      if (type === undefined)
        throw new GossipValidationError('REJECT', 'UNKNOWN_TOPIC', `unknown topic ${msg.topic}`);
      admit(type, source, msg);
      payload = validate(type, { from, data: msg.data });
    } catch (err) {
      if (err instanceof GossipValidationError) {
        verdict = err.action;
        code = err.code;
      } else {
        verdict = 'IGNORE';
        code = 'INTERNAL_ERROR';
        logger.warn({ topic: msg.topic, msgId, err: String(err) }, 'gossip validator threw');
      }
    }
    report(msgId, source, RESULT_BY_VERDICT[verdict]);
    options.metrics?.onValidation({ topic: msg.topic, verdict, code });
    options.metrics?.onValidationDuration?.(msg.topic, (performance.now() - started) / 1000);
    if (verdict !== 'ACCEPT') {
      logger.debug({ topic: msg.topic, msgId, source, from, verdict, code }, 'gossip message not accepted');
      const penalty = code === 'OK' ? undefined : penaltyOf(code, source, from);
      if (penalty !== undefined) penalizePeer(node, peerScore, penalty[0], penalty[1], `gossip ${code}`);
      return;
    }
    if (type !== undefined && payload !== undefined && from !== undefined) {
      if (type === 'advert' && msg.type === 'signed' && node.getConnections(msg.from).length > 0)
        options.onPeerBound?.(from);
      void deliver(type, payload, { from, propagationSource: source, msgId, receivedAt: now() });
    }
  };

  pubsub.addEventListener('gossipsub:message', onMessage);
  for (const type of Object.keys(handlers) as GossipType[]) {
    const topic = gossipTopicOf(type);
    pubsub.subscribe(topic);
    subscribed.add(topic);
  }

  return {
    peerScore,
    async publish<T extends GossipType>(type: T, payload: GossipPayloads[T]): Promise<number> {
      const result = await pubsub.publish(gossipTopicOf(type), encodeGossipPayload(type, payload));
      return result.recipients.length;
    },
    publishAdvert(advert: Signed<ProviderAdvert>): Promise<number> {
      return this.publish('advert', advert);
    },
    publishEpochAnnouncement(announcement: Signed<EpochAnnouncement>): Promise<number> {
      return this.publish('epoch', announcement);
    },
    topicPeers(type: GossipType): string[] {
      return pubsub.getSubscribers(gossipTopicOf(type)).map((p) => p.toString());
    },
    stop(): void {
      pubsub.removeEventListener('gossipsub:message', onMessage);
      for (const topic of subscribed) pubsub.unsubscribe(topic);
      subscribed.clear();
    },
  };
}
