// Packs the provider agent as its own npm package for GPU owners: `npm run pack:agent` (after
// `npm run build`) → apps/provider-agent/gpumesh-agent-<version>.tgz, installable with
// `npm install -g ./gpumesh-agent-<version>.tgz` (bin `gpumesh-agent`).
//
// The manifest is the agent's real workspace package.json (apps/provider-agent/package.json, name
// @gpumesh/agent). The @gpumesh libraries it uses are its bundleDependencies: they are not on any
// registry, so the tarball carries them under node_modules/@gpumesh/ (each its own package.json and
// compiled dist/). npm pack in the workspace cannot bundle them (npm links workspaces at the root),
// so this script stages the package in dist-agent/ and packs it there. Every @gpumesh dependency of
// a bundled library must be bundled too, and libs/devchain (dev tooling, the anvil launcher) never
// is: `agent-not-devchain` in .dependency-cruiser.mjs keeps the agent's sources off it, this script
// keeps it out of the tarball.
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const agentDir = join(root, 'apps', 'provider-agent');
const stage = join(root, 'dist-agent');
const SCOPE = '@gpumesh/';
const NEVER_PACKED = ['@gpumesh/devchain'];

const readJson = (path) => JSON.parse(readFileSync(path, 'utf8'));
const manifest = readJson(join(agentDir, 'package.json'));
const bundled = manifest.bundleDependencies ?? [];

/** The workspace folder of a @gpumesh library (libs/<name>). */
const libDir = (name) => join(root, 'libs', name.slice(SCOPE.length));

/** `exports` without the `source` conditions: the TypeScript sources stay out of the tarball. */
function withoutSource(exports) {
  if (typeof exports !== 'object' || exports === null) return exports;
  return Object.fromEntries(
    Object.entries(exports)
      .filter(([key]) => key !== 'source')
      .map(([key, target]) => [key, withoutSource(target)]),
  );
}

/** Copies a package's manifest and the files it publishes (`files`: folders, no negations) to `to`. */
function stagePackage(from, to, pkg) {
  mkdirSync(to, { recursive: true });
  const staged = { ...pkg, exports: withoutSource(pkg.exports) };
  writeFileSync(join(to, 'package.json'), JSON.stringify(staged, null, 2) + '\n');
  for (const entry of pkg.files ?? []) {
    if (entry.startsWith('!')) continue;
    if (!existsSync(join(from, entry)))
      throw new Error(`${join(from, entry)} missing: run npm run build first`);
    cpSync(join(from, entry), join(to, entry), {
      recursive: true,
      filter: (src) => !/\.tsbuildinfo$|\.spec\.(js|d\.ts)(\.map)?$|test-fixtures/.test(src),
    });
  }
}

for (const name of Object.keys(manifest.dependencies ?? {})) {
  if (name.startsWith(SCOPE) && !bundled.includes(name))
    throw new Error(`${name} is a dependency of ${manifest.name} but not in its bundleDependencies`);
}
/**
 * Moves the npm dependencies of a bundled library (`dependencies` or `optionalDependencies`) up into
 * the staged agent manifest's, where npm installs them beside the bundled libraries (Node finds them
 * from node_modules/@gpumesh/<lib>/dist by walking up). Left on a bundled package, npm counts them
 * part of the bundle too and expects them inside the tarball: it would install empty folders.
 */
function hoistDependencies(lib, pkg, staged, field) {
  for (const [dep, version] of Object.entries(pkg[field] ?? {})) {
    if (dep.startsWith(SCOPE)) {
      if (!bundled.includes(dep))
        throw new Error(
          `${lib} needs ${dep}: add it to ${manifest.name}'s dependencies and bundleDependencies`,
        );
      continue;
    }
    const have = staged.dependencies?.[dep] ?? staged.optionalDependencies?.[dep];
    if (have !== undefined && have !== version)
      throw new Error(`${lib} wants ${dep}@${version}, ${manifest.name} has ${have}: align the versions`);
    if (have === undefined) staged[field] = { ...staged[field], [dep]: version };
  }
  delete pkg[field];
}

const sorted = (deps) =>
  deps && Object.fromEntries(Object.entries(deps).sort(([a], [b]) => a.localeCompare(b)));

rmSync(stage, { recursive: true, force: true });
const staged = structuredClone(manifest);
for (const name of bundled) {
  if (NEVER_PACKED.includes(name)) throw new Error(`${name} is dev tooling: the agent never carries it`);
  const pkg = readJson(join(libDir(name), 'package.json'));
  hoistDependencies(name, pkg, staged, 'dependencies');
  hoistDependencies(name, pkg, staged, 'optionalDependencies');
  stagePackage(libDir(name), join(stage, 'node_modules', name), pkg);
}
staged.dependencies = sorted(staged.dependencies);
staged.optionalDependencies = sorted(staged.optionalDependencies);
stagePackage(agentDir, stage, staged);
const result = spawnSync('npm', ['pack', '--pack-destination', agentDir], { cwd: stage, stdio: 'inherit' });
process.exit(result.status ?? 1);
