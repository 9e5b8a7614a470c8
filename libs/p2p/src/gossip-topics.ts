import { GOSSIP_TOPICS, type EpochAnnouncement, type ProviderAdvert, type Signed } from '@gpumesh/protocol';

/** Payload carried by each gossip message type (one type, one topic, one payload, one handler). */
export interface GossipPayloads {
  advert: Signed<ProviderAdvert>;
  epoch: Signed<EpochAnnouncement>;
}

export type GossipType = keyof GossipPayloads;

export const GOSSIP_TYPES: readonly GossipType[] = ['advert', 'epoch'];

/** Largest gossip message the router decodes at all. */
export const GOSSIP_MAX_MESSAGE_BYTES = 256 * 1024;

/** Largest message accepted per type (an advert with 64 GPUs is ~10 KiB; an epoch announcement < 1 KiB). */
export const GOSSIP_MAX_BYTES_BY_TYPE: Readonly<Record<GossipType, number>> = {
  advert: 64 * 1024,
  epoch: 4 * 1024,
};

export function gossipTopicOf(type: GossipType): string {
  return GOSSIP_TOPICS[type];
}

/** The message type of a topic, or undefined for a topic gpumesh does not use. */
export function gossipTypeOfTopic(topic: string): GossipType | undefined {
  return GOSSIP_TYPES.find((type) => GOSSIP_TOPICS[type] === topic);
}

/** Wire encoding of a gossip payload: UTF-8 JSON of the signed envelope. */
export function encodeGossipPayload<T extends GossipType>(_type: T, payload: GossipPayloads[T]): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(payload));
}
