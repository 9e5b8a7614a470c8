/** Gossipsub topic on which providers publish signed `ProviderAdvert`s. */
export const ADVERTS_TOPIC = '/gpumesh/adverts/1';

/** Every gossip topic, keyed by the message it carries (one topic, one payload type). */
/**
 * Gossipsub topic on which a coordinator announces each epoch root it posted (signed
 * `EpochAnnouncement`s), so peers fetch and keep the epoch's file while the coordinator is there.
 */
export const EPOCHS_TOPIC = '/gpumesh/epochs/1';

export const GOSSIP_TOPICS = {
  advert: ADVERTS_TOPIC,
  epoch: EPOCHS_TOPIC,
} as const;

export type GossipTopic = (typeof GOSSIP_TOPICS)[keyof typeof GOSSIP_TOPICS];

/** libp2p stream protocol for job offers, progress and results (coordinator <-> provider). */
export const JOB_PROTOCOL_ID = '/gpumesh/job/1.0.0';
/**
 * libp2p stream protocol for many small offers to one provider at once: one stream, one decisions
 * frame, results coalesced as they finish (each offer and receipt still verifies alone).
 */
export const JOB_BATCH_PROTOCOL_ID = '/gpumesh/job-batch/1.0.0';
/** libp2p stream protocol for fetching content-addressed artifacts (models, large inputs). */
export const ARTIFACT_PROTOCOL_ID = '/gpumesh/artifact/1.0.0';

/**
 * libp2p stream protocol serving epoch files by their on-chain file hash (keccak256 of the bytes):
 * anyone holding a file serves it, so the files outlive the coordinator.
 */
export const EPOCH_FILE_PROTOCOL_ID = '/gpumesh/epoch-file/1';

export const STREAM_PROTOCOLS = {
  job: JOB_PROTOCOL_ID,
  jobBatch: JOB_BATCH_PROTOCOL_ID,
  artifact: ARTIFACT_PROTOCOL_ID,
  epochFile: EPOCH_FILE_PROTOCOL_ID,
} as const;

export type StreamProtocolId = (typeof STREAM_PROTOCOLS)[keyof typeof STREAM_PROTOCOLS];
