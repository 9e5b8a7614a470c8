// #verification: tolerance-aware comparison of job results and offline-checkable evidence bundles.
export * from './tolerance.js';
export * from './compare.js';
export * from './evidence.js';
export { checkResultSanity, type SanityResult, type SanityFailureCode } from './sanity.js';
