// Must stay first: libp2p needs Promise.withResolvers, which Node 20 lacks.
import './polyfills.js';

export * from './errors.js';
export * from './peer-key.js';
export * from './node.js';
export * from './connection-guard.js';
export * from './gossip-rate-limit.js';
export * from './frames.js';
export * from './peer-score.js';
export * from './gossip-topics.js';
export * from './gossip-validation.js';
export * from './gossip.js';
export * from './job/index.js';
export { coalesceSocketWrites, type CoalesceUntil } from './coalesce-writes.js';
export * from './artifact-protocol.js';
export * from './epoch-file-protocol.js';
export * from './result-size.js';
export * from './result-budget.js';
