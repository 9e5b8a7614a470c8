// Import rules, checked in CI by `npm run lint:deps` (part of `npm run lint`).
//
// The libraries stack in one fixed order; each may import only those below it:
//
//   devchain      -> rewards (dev tooling: the local anvil launcher; no other library imports it)
//   verification  -> compute, protocol
//   compute, p2p, rewards -> protocol
//   scheduler     -> (nothing)
//   protocol      -> (nothing: the bottom)
//
// Apps build on libraries, never the other way round, and the provider agent and the coordinator
// never import each other (they meet only over the wire, in libs/protocol's messages).

/** Libraries each library may import besides itself. */
const LIBRARY_DEPENDENCIES = {
  protocol: [],
  scheduler: [],
  compute: ['protocol'],
  p2p: ['protocol'],
  rewards: ['protocol'],
  verification: ['compute', 'protocol'],
  devchain: ['rewards'],
};

const libraryOrder = Object.entries(LIBRARY_DEPENDENCIES).map(([lib, allowed]) => ({
  name: `lib-order-${lib}`,
  comment: `libs/${lib} may import only ${allowed.length > 0 ? allowed.map((l) => `libs/${l}`).join(', ') : 'no other library'}`,
  severity: 'error',
  // Unit specs may cross-check a neighbour (evidence.spec.ts: one artifact hash in #p2p and #compute).
  from: { path: `^libs/${lib}/`, pathNot: '\\.spec\\.ts$' },
  to: { path: '^libs/', pathNot: [`^libs/${lib}/`, ...allowed.map((l) => `^libs/${l}/`)] },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No import cycles, type-only ones included: split the shared part into its own file.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'libs-not-apps',
      comment: 'Libraries never import apps.',
      severity: 'error',
      from: { path: '^libs/' },
      to: { path: '^apps/' },
    },
    ...libraryOrder,
    {
      name: 'libs-not-devchain',
      comment:
        'libs/devchain (the local anvil launcher) is dev tooling for the coordinator --dev, tests and benchmarks; no library imports it.',
      severity: 'error',
      from: { path: '^libs/', pathNot: '^libs/devchain/' },
      to: { path: '^libs/devchain/' },
    },
    {
      // Two halves: a file under libs/<lib>/src/cli/ or dev/ that imports anything (node:* included),
      // and any import of one (an index re-exporting it).
      name: 'libs-no-cli-or-dev',
      comment:
        'A library holds no command line (apps/cli) and no dev tooling (libs/devchain): no libs/<lib>/src/cli/ or dev/.',
      severity: 'error',
      from: { path: '^libs/[^/]+/src/(cli|dev)/' },
      to: {},
    },
    {
      name: 'libs-no-cli-or-dev',
      comment:
        'A library holds no command line (apps/cli) and no dev tooling (libs/devchain): no libs/<lib>/src/cli/ or dev/.',
      severity: 'error',
      from: {},
      to: { path: '^libs/[^/]+/src/(cli|dev)/' },
    },
    {
      name: 'agent-not-devchain',
      comment:
        'The packed provider agent carries no dev tooling (scripts/pack-agent.mjs packs no libs/devchain).',
      severity: 'error',
      from: { path: '^apps/provider-agent/' },
      to: { path: '^libs/devchain/' },
    },
    {
      name: 'agent-not-coordinator',
      comment: 'The provider agent never imports the coordinator.',
      severity: 'error',
      from: { path: '^apps/provider-agent/' },
      to: { path: '^apps/coordinator/' },
    },
    {
      name: 'coordinator-not-agent',
      comment: 'The coordinator never imports the provider agent.',
      severity: 'error',
      from: { path: '^apps/coordinator/' },
      to: { path: '^apps/provider-agent/' },
    },
  ],
  options: {
    doNotFollow: { path: ['node_modules'] },
    exclude: { path: ['^dist/', '^generated/', '^node_modules/'] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    combinedDependencies: false,
    enhancedResolveOptions: {
      // '#protocol' and the other package.json "imports" resolve to the TypeScript sources.
      conditionNames: ['source', 'import', 'node', 'default'],
      exportsFields: ['exports'],
      extensions: ['.ts', '.tsx', '.js', '.mjs', '.cjs', '.d.ts', '.json'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
