// The provider agent's tarball (`npm run pack:agent`, scripts/pack-agent.mjs): built from the real
// workspace manifest (apps/provider-agent/package.json), carrying the @gpumesh libraries it bundles
// and never libs/devchain, its bin runs from the unpacked package. The tarball is unpacked under
// dist/ so that its npm dependencies (libp2p, tfjs, ...) resolve from the repository's node_modules
// without a registry; its @gpumesh libraries resolve from the tarball's own node_modules first.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assertBuilt, runProcess } from '../helpers/processes.js';

interface Manifest {
  name: string;
  version: string;
  bin?: Record<string, string>;
  exports?: unknown;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  bundleDependencies?: string[];
}

const root = process.cwd();
const agentDir = join(root, 'apps', 'provider-agent');
const readManifest = (path: string): Manifest => JSON.parse(readFileSync(path, 'utf8')) as Manifest;
const workspaceManifest = readManifest(join(agentDir, 'package.json'));
const tarball = join(agentDir, `gpumesh-agent-${workspaceManifest.version}.tgz`);

describe('npm run pack:agent', () => {
  let unpacked: string;
  let files: string[];
  let packed: Manifest;

  beforeAll(() => {
    assertBuilt();
    const pack = spawnSync(process.execPath, [join(root, 'scripts', 'pack-agent.mjs')], { encoding: 'utf8' });
    if (pack.status !== 0) throw new Error(`pack-agent failed:\n${pack.stdout}${pack.stderr}`);
    const list = spawnSync('tar', ['tzf', tarball], { encoding: 'utf8' });
    files = list.stdout.split('\n').filter((f) => f.length > 0);
    unpacked = mkdtempSync(join(root, 'dist', 'agent-pack-test-'));
    const untar = spawnSync('tar', ['xzf', tarball, '-C', unpacked], { encoding: 'utf8' });
    if (untar.status !== 0) throw new Error(`tar failed: ${untar.stderr}`);
    packed = readManifest(join(unpacked, 'package', 'package.json'));
  }, 120_000);

  afterAll(() => {
    if (unpacked) rmSync(unpacked, { recursive: true, force: true });
  });

  it('is the workspace manifest with its bundled libraries, and no TypeScript sources', () => {
    expect(packed.name).toBe('@gpumesh/agent');
    expect(packed.version).toBe(workspaceManifest.version);
    expect(packed.bin).toEqual({ 'gpumesh-agent': 'dist/main.js' });
    expect(JSON.stringify(packed.exports)).not.toContain('source');
    const bundled = workspaceManifest.bundleDependencies ?? [];
    expect(packed.bundleDependencies).toEqual(bundled);
    expect(bundled.length).toBeGreaterThan(0);
    expect(files).toContain('package/dist/main.js');
    for (const lib of bundled) {
      expect(files).toContain(`package/node_modules/${lib}/package.json`);
      expect(files).toContain(`package/node_modules/${lib}/dist/index.js`);
    }
    expect(files.filter((f) => f.includes('devchain'))).toEqual([]);
    expect(files.filter((f) => /(?<!\.d)\.ts$|\.spec\.|test-fixtures|tsbuildinfo/.test(f))).toEqual([]);
  });

  it("declares every npm dependency of its bundled libraries, at the library's version", () => {
    const declared = { ...packed.dependencies, ...packed.optionalDependencies };
    for (const lib of workspaceManifest.bundleDependencies ?? []) {
      const manifest = readManifest(join(root, 'libs', lib.replace('@gpumesh/', ''), 'package.json'));
      for (const [dep, version] of Object.entries({
        ...manifest.dependencies,
        ...manifest.optionalDependencies,
      })) {
        expect({ lib, dep, version: declared[dep] }).toEqual({ lib, dep, version });
      }
    }
  });

  it('runs its bin from the unpacked package: --version and --help', async () => {
    const main = join(unpacked, 'package', 'dist', 'main.js');
    expect((await runProcess(main, ['--version'], process.env)).trim()).toBe(workspaceManifest.version);
    expect(await runProcess(main, ['--help'], process.env)).toContain('usage: gpumesh-agent <command>');
  });
});
