// The job protocol: a coordinator offers job attempts to a provider's agent, which accepts or rejects
// each, then streams progress and a signed result. Two transports carry it: one offer per stream
// (JOB_PROTOCOL_ID) and many per stream (JOB_BATCH_PROTOCOL_ID). The request side (request/) and the
// response side (response/) import only what lies beside them here (constants, types, frames), never
// each other.
export * from './constants.js';
export * from './frames.js';
export type * from './types.js';
export * from './request/index.js';
export * from './response/index.js';
