#!/usr/bin/env node
// Checks that each workspace package (libs/*, apps/provider-agent) declares exactly the npm packages
// its sources import, at the version the root lockfile installs (part of `npm run lint:deps`).
// npm hoists every dependency to the root node_modules, so an undeclared import still resolves in the
// monorepo and fails only where the package is installed alone (the packed agent): this finds it here.
//   node scripts/check-workspaces.mjs
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const rootManifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'));

/**
 * Dependencies a package loads by a name built at run time, so no import names them; each with why.
 * Optional dependencies need no entry: they are loaded only when present (tfjs-node's backends).
 */
const LOADED_BY_COMPUTED_NAME = {
  '@gpumesh/devchain': {
    '@foundry-rs/anvil': 'anvil.ts resolves its platform package @foundry-rs/anvil-<os>-<arch>',
  },
};

/** Source files of a package: its src/ TypeScript, without unit specs and test fixtures. */
function sources(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return /\.ts$/.test(name) && !/\.spec\.ts$|^test-fixtures\.ts$/.test(name) ? [path] : [];
  });
}

const SPECIFIER =
  /(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+|\brequire(?:\.resolve)?\(\s*)'([^'./][^']*)'/gm;
const builtins = new Set(builtinModules);

/** The npm package a bare specifier names (`@scope/name/sub` → `@scope/name`), or null for node's own. */
function packageOf(specifier) {
  if (specifier.startsWith('node:') || builtins.has(specifier.split('/')[0])) return null;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

const workspaces = rootManifest.workspaces.flatMap((pattern) =>
  pattern.endsWith('/*')
    ? readdirSync(join(root, pattern.slice(0, -2))).map((name) => join(pattern.slice(0, -2), name))
    : [pattern],
);

const problems = [];
for (const workspace of workspaces) {
  const manifest = JSON.parse(readFileSync(join(root, workspace, 'package.json'), 'utf8'));
  const imported = new Map();
  for (const file of sources(join(root, workspace, 'src'))) {
    for (const [, specifier] of readFileSync(file, 'utf8').matchAll(SPECIFIER)) {
      const pkg = packageOf(specifier);
      if (pkg && pkg !== manifest.name && !imported.has(pkg)) imported.set(pkg, relative(root, file));
    }
  }
  const declared = { ...manifest.dependencies };
  const optional = { ...manifest.optionalDependencies };
  const computed = LOADED_BY_COMPUTED_NAME[manifest.name] ?? {};
  for (const [pkg, file] of imported) {
    if (!(pkg in declared) && !(pkg in optional))
      problems.push(
        `${manifest.name}: ${file} imports ${pkg}, which ${workspace}/package.json does not declare`,
      );
  }
  for (const pkg of Object.keys(declared)) {
    if (!imported.has(pkg) && !(pkg in computed))
      problems.push(`${manifest.name}: declares ${pkg}, which nothing in ${workspace}/src imports`);
  }
  for (const [pkg, version] of Object.entries({ ...declared, ...optional })) {
    const installed = pkg.startsWith('@gpumesh/')
      ? Object.values(lock.packages).find((p) => p.name === pkg)?.version
      : lock.packages[`node_modules/${pkg}`]?.version;
    if (installed !== version)
      problems.push(`${manifest.name}: ${pkg}@${version}, but package-lock.json has ${installed ?? 'none'}`);
  }
}

if (problems.length > 0) {
  process.stderr.write(`workspace manifests:\n  ${problems.join('\n  ')}\n`);
  process.exit(1);
}
process.stdout.write(`workspace manifests: ${workspaces.length} packages declare what they import\n`);
