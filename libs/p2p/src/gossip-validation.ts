import {
  gossipActionFor,
  isProtocolError,
  verifySigned,
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
