import { readdirSync, readFileSync } from 'node:fs';

// Import rules, checked in CI by `npm run lint:deps` (part of `npm run lint`).
//
// The libraries (npm workspaces @gpumesh/<lib> in libs/<lib>) stack in one fixed order; each may
// import only those below it:
//
//   devchain      -> rewards (dev tooling: the local anvil launcher; no other library imports it)
//   verification  -> compute, protocol
//   compute, p2p, rewards -> protocol
//   scheduler     -> (nothing)
//   sdk           -> protocol (the client SDK: types generated from docs/openapi.json, .npy codec)
//   protocol      -> (nothing: the bottom)
//
// Apps build on libraries, never the other way round, and the provider agent and the coordinator
// never import each other (they meet only over the wire, in libs/protocol's messages).
//
// Inside the coordinator (apps/coordinator/src) the folders stack in COORDINATOR_LAYERS: a folder
// imports its own files and folders of lower layers only, never one of its own layer or above
// (docs/architecture.md "The coordinator's layers, checked").

/**
 * Libraries each library may import besides itself. Each one's package.json lists exactly these as
 * its @gpumesh dependencies (checked below, so the manifests and the rules cannot drift apart).
 */
const LIBRARY_DEPENDENCIES = {
  protocol: [],
  scheduler: [],
  compute: ['protocol'],
  p2p: ['protocol'],
  rewards: ['protocol'],
  verification: ['compute', 'protocol'],
  devchain: ['rewards'],
  sdk: ['protocol'],
};

const SCOPE = '@gpumesh/';
const libraryFolders = readdirSync(new URL('libs/', import.meta.url)).sort();
const listed = Object.keys(LIBRARY_DEPENDENCIES).sort();
if (libraryFolders.join() !== listed.join())
  throw new Error(
    `LIBRARY_DEPENDENCIES lists ${listed.join(', ')}; libs/ holds ${libraryFolders.join(', ')}`,
  );
for (const [lib, allowed] of Object.entries(LIBRARY_DEPENDENCIES)) {
  const manifest = JSON.parse(readFileSync(new URL(`libs/${lib}/package.json`, import.meta.url), 'utf8'));
  const declared = Object.keys(manifest.dependencies ?? {})
    .filter((name) => name.startsWith(SCOPE))
    .map((name) => name.slice(SCOPE.length))
    .sort();
  if (manifest.name !== `${SCOPE}${lib}` || declared.join() !== [...allowed].sort().join())
    throw new Error(
      `libs/${lib}/package.json: name ${manifest.name} with @gpumesh dependencies [${declared.join(', ')}]; ` +
        `LIBRARY_DEPENDENCIES says ${SCOPE}${lib} with [${allowed.join(', ')}]`,
    );
}

const libraryOrder = Object.entries(LIBRARY_DEPENDENCIES).map(([lib, allowed]) => ({
  name: `lib-order-${lib}`,
  comment: `libs/${lib} may import only ${allowed.length > 0 ? allowed.map((l) => `libs/${l}`).join(', ') : 'no other library'}`,
  severity: 'error',
  // Unit specs may cross-check a neighbour (evidence.spec.ts: one artifact hash in @gpumesh/p2p and
  // @gpumesh/compute).
  from: { path: `^libs/${lib}/`, pathNot: '\\.spec\\.ts$' },
  to: { path: '^libs/', pathNot: [`^libs/${lib}/`, ...allowed.map((l) => `^libs/${l}/`)] },
}));

/** The libraries the packed agent carries (apps/provider-agent/package.json bundleDependencies). */
const AGENT_LIBRARIES = (
  JSON.parse(readFileSync(new URL('apps/provider-agent/package.json', import.meta.url), 'utf8'))
    .bundleDependencies ?? []
).map((name) => name.slice(SCOPE.length));

const COORDINATOR = '^apps/coordinator/src';

/**
 * The coordinator's folders, lowest layer first. Above them all, free to import any of them: the
 * files directly in src/ (app.module.ts, bootstrap.ts, main.ts), the folders of TOP_OF_COORDINATOR,
 * and every controller (`*.controller.ts`, an area's HTTP surface, which only a Nest module imports).
 */
const COORDINATOR_LAYERS = [
  ['config', 'common', 'logging', 'metrics', 'infra'],
  ['database', 'security'],
  ['accounts', 'ledger', 'settings', 'events', 'queue'],
  ['auth', 'pricing'],
  ['artifacts', 'settlement', 'tensors'],
  ['providers'],
  ['p2p'],
  ['jobs', 'reputation'],
  ['verification'],
  ['capacity'],
  ['dispatch'],
  ['workers'],
];
const TOP_OF_COORDINATOR = ['admin', 'dev', 'health'];

/**
 * Imports that go against the layers and stay, each with its reason. Add one only when moving the
 * shared part down is not possible yet; the rules below exempt exactly this edge.
 */
const COORDINATOR_LAYER_EXCEPTIONS = [
  {
    // A unit spec cross-checks that the error names the backoff strategy matches (it sees errors
    // by name, as BullMQ hands them over) are the names the dispatcher throws.
    from: 'queue/dispatch-backoff.spec.ts',
    to: 'dispatch/dispatch-errors.ts',
  },
];

const escapePath = (path) => path.replace(/[.]/g, '\\.');

const coordinatorLayers = COORDINATOR_LAYERS.flatMap((layer, index) => {
  const below = COORDINATOR_LAYERS.slice(0, index).flat();
  return layer.flatMap((folder) => {
    const allowed = [`${COORDINATOR}/${folder}/`, ...below.map((f) => `${COORDINATOR}/${f}/`)];
    const rule = (from, to) => ({
      name: `coordinator-layer-${folder}`,
      comment:
        `apps/coordinator/src/${folder}/ (layer ${index}) may import, of the coordinator, only its own files` +
        (below.length > 0 ? ` and ${below.map((f) => `${f}/`).join(', ')}` : ''),
      severity: 'error',
      from,
      to,
    });
    const exceptions = COORDINATOR_LAYER_EXCEPTIONS.filter((e) => e.from.startsWith(`${folder}/`));
    return [
      rule(
        {
          path: `${COORDINATOR}/${folder}/`,
          pathNot: ['\\.controller\\.ts$', ...exceptions.map((e) => `${COORDINATOR}/${escapePath(e.from)}$`)],
        },
        { path: `${COORDINATOR}/`, pathNot: allowed },
      ),
      ...exceptions.map((e) =>
        rule(
          { path: `${COORDINATOR}/${escapePath(e.from)}$` },
          { path: `${COORDINATOR}/`, pathNot: [...allowed, `${COORDINATOR}/${escapePath(e.to)}$`] },
        ),
      ),
    ];
  });
});

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
        'The packed provider agent carries no dev tooling (@gpumesh/devchain is not among its bundled libraries; scripts/pack-agent.mjs refuses it).',
      severity: 'error',
      from: { path: '^apps/provider-agent/' },
      to: { path: '^libs/devchain/' },
    },
    {
      name: 'agent-only-bundled-libs',
      comment: `The provider agent imports only the libraries its package bundles (${AGENT_LIBRARIES.join(', ')}: apps/provider-agent/package.json bundleDependencies); an installed agent has no other.`,
      severity: 'error',
      from: { path: '^apps/provider-agent/' },
      to: { path: '^libs/', pathNot: AGENT_LIBRARIES.map((lib) => `^libs/${lib}/`) },
    },
    {
      name: 'agent-not-coordinator',
      comment: 'The provider agent never imports the coordinator.',
      severity: 'error',
      from: { path: '^apps/provider-agent/' },
      to: { path: '^apps/coordinator/' },
    },
    ...coordinatorLayers,
    {
      name: 'coordinator-layer-unlisted',
      comment:
        'A new folder of apps/coordinator/src goes into COORDINATOR_LAYERS (or TOP_OF_COORDINATOR) first.',
      severity: 'error',
      from: {
        path: `${COORDINATOR}/[^/]+/`,
        pathNot: [...COORDINATOR_LAYERS.flat(), ...TOP_OF_COORDINATOR].map((f) => `${COORDINATOR}/${f}/`),
      },
      to: { path: `${COORDINATOR}/` },
    },
    {
      name: 'coordinator-controllers-on-top',
      comment:
        "Only a Nest module registers a controller; nothing else imports one (what others need goes in the area's dto/).",
      severity: 'error',
      from: { path: `${COORDINATOR}/`, pathNot: ['\\.module\\.ts$', '\\.spec\\.ts$'] },
      to: { path: `${COORDINATOR}/.+\\.controller\\.ts$` },
    },
    {
      // The admin dashboard is a browser app built by vite: it meets the coordinator over REST only.
      // Its response types come from the SDK's generated types, which `npm run openapi` derives from
      // the coordinator's decorators (a type-only import of a file that has nothing else, so nothing
      // of the SDK's client, nor of Node, reaches the bundle).
      name: 'dashboard-only-sdk-types',
      comment:
        "The dashboard imports none of our apps or libraries but the SDK's generated REST types (@gpumesh/sdk/types).",
      severity: 'error',
      from: { path: '^apps/dashboard/' },
      to: { path: '^(apps|libs)/', pathNot: ['^apps/dashboard/', '^libs/sdk/src/generated\\.ts$'] },
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
    exclude: { path: ['^dist/', '^(libs|apps)/[^/]+/dist/', '^generated/', '^node_modules/'] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    combinedDependencies: false,
    enhancedResolveOptions: {
      // @gpumesh/<lib> (the workspace links in node_modules, their package.json "exports") and the
      // root package's #prisma resolve to the TypeScript sources.
      conditionNames: ['source', 'import', 'node', 'default'],
      exportsFields: ['exports'],
      extensions: ['.ts', '.tsx', '.js', '.mjs', '.cjs', '.d.ts', '.json'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
