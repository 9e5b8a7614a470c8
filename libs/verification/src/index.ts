// #verification: tolerance-aware comparison of job results and offline-checkable evidence bundles.
export * from './tolerance.js';
export * from './compare.js';
export * from './evidence.js';
