import { fileURLToPath } from 'node:url';
import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('.', import.meta.url));
// The workspace libraries (@gpumesh/<lib>, libs/<lib>) from their TypeScript sources, like their
// package.json exports' `source` condition does for tsc; #prisma is the root package's subpath import.
const alias = [
  { find: /^@gpumesh\/([a-z0-9-]+)$/, replacement: `${root}libs/$1/src/index.ts` },
  { find: /^#prisma$/, replacement: `${root}generated/prisma/client.ts` },
];

const swcPlugin = swc.vite({
  jsc: {
    parser: { syntax: 'typescript', decorators: true },
    transform: { decoratorMetadata: true, legacyDecorator: true },
    target: 'es2022',
  },
});

// Tiers (npm run test:unit | test:integration | test:e2e; `npm test` builds and runs all of them, in
// this order: the fast ones fail first). Each project has its own sequence.groupOrder, so one tier
// finishes before the next starts.
//  - unit: specs beside the code, in parallel.
//  - integration: real PostgreSQL, Redis, anvil and libp2p, in process. Needs no build (the
//    dashboard's is made once when missing: test/setup/dashboard-build.ts).
//  - e2e: starts real processes built under dist/ (the coordinator, the agent, the CLIs, the anvil
//    host) or a real browser; needs `npm run build`. One file at a time.

/** Test files that spawn built JS from dist/ (or chromium): the e2e tier. */
const E2E = [
  'test/e2e/**/*.test.ts',
  'test/agent/executor-memory-limit.test.ts',
  'test/dashboard/dashboard.test.ts',
  'test/faults/faults.test.ts',
  'test/faults/scale-out.test.ts',
  'test/fuzz/frames.test.ts',
  'test/rewards/agent-chain-cli.test.ts',
  'test/rewards/anvil-process.test.ts',
  'test/security/log-secrets.test.ts',
  'test/verification/evidence-cli.test.ts',
  'test/verification/model-verification.test.ts',
  'test/verification/reference-worker.test.ts',
];

/**
 * Integration files that must run alone: fault injection and timing (faults/), batching counts that
 * depend on how requests interleave, socket-write and rate-limit measurements, speed measurements
 * (capacity probes, proven speed against a tight deadline), connection floods, mDNS on the
 * machine's real network, and the embedded servers (test/infra).
 */
const INTEGRATION_SERIAL = [
  'test/faults/**/*.test.ts',
  'test/infra/**/*.test.ts',
  'test/api/reputation-batching.test.ts',
  'test/api/sql-pipeline.test.ts',
  'test/api/transition-batching.test.ts',
  'test/p2p/attack-network.test.ts',
  'test/p2p/capacity.test.ts',
  'test/p2p/coalesce-writes.test.ts',
  'test/p2p/mdns.test.ts',
  'test/p2p/proven-speed.test.ts',
  'test/security/http-hardening.test.ts',
];

/**
 * Integration files that load Dawn (dawn.node) and tfjs's webgpu backend: each in a process of its
 * own. Shared with other files (isolate: false), the webgpu backend stayed tfjs's current one and a
 * later file's kernel ran on a device already closed, a fatal napi_throw that killed the fork.
 */
const INTEGRATION_WEBGPU = ['test/agent/webgpu-*.test.ts'];

const integrationOptions = {
  // One module graph per worker, not per file: the coordinator's imports (NestJS, Prisma, tfjs,
  // libp2p) cost seconds a file, most of the suite's time when each file paid them. Files must leave
  // no state behind (env restored, servers closed, timers real, tfjs tensors counted from a baseline).
  isolate: false,
  globalSetup: ['./test/setup/dashboard-build.ts'],
  setupFiles: ['./test/setup/polyfills.ts'],
  testTimeout: 60_000,
  hookTimeout: 60_000,
};

export default defineConfig({
  resolve: { alias },
  test: {
    projects: [
      {
        plugins: [swcPlugin],
        resolve: { alias },
        test: {
          name: 'unit',
          include: ['apps/**/*.spec.ts', 'libs/**/*.spec.ts'],
          isolate: false, // as integrationOptions says
          setupFiles: ['./test/setup/polyfills.ts'],
          sequence: { groupOrder: 0 },
        },
      },
      {
        // Files that isolate themselves (a database of their own from test/support/database.ts, a
        // BullMQ prefix of their own, ports picked by the OS, an anvil of their own): two at a time.
        plugins: [swcPlugin],
        resolve: { alias },
        test: {
          ...integrationOptions,
          name: 'integration:parallel',
          include: ['test/**/*.test.ts'],
          exclude: [...E2E, ...INTEGRATION_SERIAL, ...INTEGRATION_WEBGPU],
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
      {
        plugins: [swcPlugin],
        resolve: { alias },
        test: {
          ...integrationOptions,
          name: 'integration:webgpu',
          include: INTEGRATION_WEBGPU,
          exclude: E2E,
          isolate: true, // a fresh process per file: see INTEGRATION_WEBGPU
          pool: 'forks',
          maxWorkers: 1,
          sequence: { groupOrder: 2 },
        },
      },
      {
        plugins: [swcPlugin],
        resolve: { alias },
        test: {
          ...integrationOptions,
          name: 'integration:serial',
          include: INTEGRATION_SERIAL,
          exclude: E2E,
          maxWorkers: 1,
          sequence: { groupOrder: 3 },
        },
      },
      {
        plugins: [swcPlugin],
        resolve: { alias },
        test: {
          ...integrationOptions,
          name: 'e2e',
          include: E2E,
          maxWorkers: 1,
          sequence: { groupOrder: 4 },
        },
      },
    ],
  },
});
