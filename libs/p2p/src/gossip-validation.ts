import {
  gossipActionFor,
  isProtocolError,
  verifySigned,
  type EpochAnnouncement,
  type GossipAction,
  type ProtocolErrorCode,
  type ProviderAdvert,
  type ReplayGuard,
  type Signed,
} from '@gpumesh/protocol';

import { GOSSIP_MAX_BYTES_BY_TYPE } from './gossip-topics.js';

/** Every reason a gossip message is not accepted. */
export type GossipErrorCode =
  | ProtocolErrorCode
  | 'MESSAGE_TOO_LARGE'
  | 'UNDECODABLE'
  | 'UNSIGNED_MESSAGE'
  | 'PEER_ID_MISMATCH'
  | 'REPLAY'
  | 'STALE'
  | 'PEER_BANNED'
  | 'ORIGIN_NOT_CONNECTED'
  | 'ORIGIN_RATE_LIMITED'
  | 'RELAY_RATE_LIMITED'
  | 'UNKNOWN_TOPIC'
  | 'UNTRUSTED_ANNOUNCER'
  | 'INTERNAL_ERROR';

/** A failed gossip check: what to do with the message (`action`) and why (`code`). */
export class GossipValidationError extends Error {
  readonly action: GossipAction;
  readonly code: GossipErrorCode;

  constructor(action: GossipAction, code: GossipErrorCode, message: string) {
    super(message);
    this.name = 'GossipValidationError';
    this.action = action;
    this.code = code;
  }
}

/** What a validator sees of a gossip message. */
export interface GossipMessageInput {
  /** Originator peer id (the gossipsub message signer); undefined for an unsigned message. */
  readonly from: string | undefined;
  readonly data: Uint8Array;
}

export interface AdvertValidationContext {
  /** Highest advert `seq` per signer; shared by every advert validation of this node. */
  readonly replayGuard: ReplayGuard;
  /** Clock (ms); defaults to `Date.now`. */
  readonly now?: () => number;
  readonly maxSkewMs?: number;
}

function decodeJson(data: Uint8Array, maxBytes: number): unknown {
  if (data.byteLength > maxBytes) {
    throw new GossipValidationError(
      'REJECT',
      'MESSAGE_TOO_LARGE',
      `message of ${data.byteLength} bytes exceeds ${maxBytes}`,
    );
  }
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch {
    throw new GossipValidationError('REJECT', 'UNDECODABLE', 'message is not UTF-8 JSON');
  }
}

/**
 * Validates a `ProviderAdvert` gossip message. Order matters: only a message whose signature and
 * peer binding check out may touch the replay guard, so nobody can burn another provider's `seq`.
 *
 * - too large, not JSON, invalid shape: REJECT
 * - bad signature, signer/address mismatch, bad peer binding: REJECT
 * - gossip originator is not the advert's `peerId`: REJECT (`PEER_ID_MISMATCH`)
 * - expired or issued in the future: IGNORE (may be clock skew or a slow path)
 * - `seq` already seen (`REPLAY`) or lower than seen (`STALE`): IGNORE
 */
export function validateAdvertGossip(
  ctx: AdvertValidationContext,
  message: GossipMessageInput,
): Signed<ProviderAdvert> {
  if (message.from === undefined) {
    throw new GossipValidationError(
      'REJECT',
      'UNSIGNED_MESSAGE',
      'advert gossip must be signed by its origin',
    );
  }
  const json = decodeJson(message.data, GOSSIP_MAX_BYTES_BY_TYPE.advert);
  let signed: Signed<ProviderAdvert>;
  try {
    signed = verifySigned('advert', json, {
      now: (ctx.now ?? Date.now)(),
      ...(ctx.maxSkewMs !== undefined ? { maxSkewMs: ctx.maxSkewMs } : {}),
    });
  } catch (err) {
    if (isProtocolError(err))
      throw new GossipValidationError(gossipActionFor(err.code), err.code, err.message);
    throw err;
  }
  const advert = signed.payload;
  if (advert.peerId !== message.from) {
    throw new GossipValidationError(
      'REJECT',
      'PEER_ID_MISMATCH',
      `advert for peer ${advert.peerId} published by ${message.from}`,
    );
  }
  const verdict = ctx.replayGuard.checkSeq(signed.signer, advert.seq);
  if (verdict === 'replay') {
    throw new GossipValidationError(
      'IGNORE',
      'REPLAY',
      `advert seq ${advert.seq} of ${signed.signer} already seen`,
    );
  }
  if (verdict === 'stale') {
    throw new GossipValidationError(
      'IGNORE',
      'STALE',
      `advert seq ${advert.seq} of ${signed.signer} is stale`,
    );
  }
  return signed;
}

export interface EpochAnnouncementValidationContext {
  /** Highest announcement `seq` per signer (a guard of its own: seqs of adverts are another series). */
  readonly replayGuard: ReplayGuard;
  /**
   * Whose announcements this node acts on (an agent: its coordinator's wallet). Others are ignored,
   * not rejected: a relaying peer cannot know every receiver's policy. Absent: any signer.
   */
  readonly isTrustedAnnouncer?: (signer: string) => boolean;
  readonly now?: () => number;
  readonly maxSkewMs?: number;
}

/**
 * Validates an `EpochAnnouncement` gossip message. Cheap and total: it never touches the chain or the
 * file (the receiver checks the file's hash when it fetches it, and the chain before it claims).
 *
 * - too large, not JSON, invalid shape, bad signature: REJECT
 * - gossip originator is not the announcement's `peerId`: REJECT (`PEER_ID_MISMATCH`)
 * - expired or issued in the future: IGNORE
 * - a signer this node does not listen to: IGNORE (`UNTRUSTED_ANNOUNCER`)
 * - `seq` already seen (`REPLAY`) or lower than seen (`STALE`): IGNORE
 */
export function validateEpochAnnouncementGossip(
  ctx: EpochAnnouncementValidationContext,
  message: GossipMessageInput,
): Signed<EpochAnnouncement> {
  if (message.from === undefined) {
    throw new GossipValidationError(
      'REJECT',
      'UNSIGNED_MESSAGE',
      'epoch announcements must be signed by their origin',
    );
  }
  const json = decodeJson(message.data, GOSSIP_MAX_BYTES_BY_TYPE.epoch);
  let signed: Signed<EpochAnnouncement>;
  try {
    signed = verifySigned('epoch', json, {
      now: (ctx.now ?? Date.now)(),
      ...(ctx.maxSkewMs !== undefined ? { maxSkewMs: ctx.maxSkewMs } : {}),
    });
  } catch (err) {
    if (isProtocolError(err))
      throw new GossipValidationError(gossipActionFor(err.code), err.code, err.message);
    throw err;
  }
  const announcement = signed.payload;
  if (announcement.peerId !== message.from) {
    throw new GossipValidationError(
      'REJECT',
      'PEER_ID_MISMATCH',
      `epoch announcement for peer ${announcement.peerId} published by ${message.from}`,
    );
  }
  if (ctx.isTrustedAnnouncer !== undefined && !ctx.isTrustedAnnouncer(signed.signer)) {
    throw new GossipValidationError(
      'IGNORE',
      'UNTRUSTED_ANNOUNCER',
      `epoch announcement signed by ${signed.signer}, whom this node does not follow`,
    );
  }
  const verdict = ctx.replayGuard.checkSeq(signed.signer, announcement.seq);
  if (verdict === 'replay') {
    throw new GossipValidationError(
      'IGNORE',
      'REPLAY',
      `epoch announcement seq ${announcement.seq} of ${signed.signer} already seen`,
    );
  }
  if (verdict === 'stale') {
    throw new GossipValidationError(
      'IGNORE',
      'STALE',
      `epoch announcement seq ${announcement.seq} of ${signed.signer} is stale`,
    );
  }
  return signed;
}
