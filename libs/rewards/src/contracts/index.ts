export * from './typed.js';
export * from './compute-token.js';
export * from './job-escrow.js';
export * from './provider-staking.js';
export * from './rewards-distributor.js';
