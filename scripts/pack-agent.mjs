// Packs the provider agent as its own npm package (@gpumesh/agent, bin `gpumesh-agent`) for GPU
// owners: `npm run pack:agent` → apps/provider-agent/gpumesh-agent-<version>.tgz, installable with
// `npm install -g ./gpumesh-agent-<version>.tgz`. It carries the compiled agent and the libraries it
// uses (protocol, p2p, compute, rewards), and no dev tooling (libs/devchain, the anvil launcher, stays
// out: `agent-not-devchain` in .dependency-cruiser.mjs). Its package.json
// (apps/provider-agent/agent-package.json, staged as package.json only in the pack directory so it
// never shadows the monorepo's import map) maps `@gpumesh/protocol`/`@gpumesh/p2p`/`@gpumesh/compute`/`@gpumesh/rewards` to them
// (rewards: the stake, claim and dev-fund commands).
import { copyFileSync, cpSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const agentDir = join(root, 'apps', 'provider-agent');
const packDir = join(root, 'dist-agent');
const stage = join(packDir, 'dist');
const PARTS = [
  'apps/provider-agent/src',
  'libs/protocol/src',
  'libs/p2p/src',
  'libs/compute/src',
  'libs/rewards/src',
];
for (const part of PARTS) {
  if (!existsSync(join(root, 'dist', part))) throw new Error(`dist/${part} missing: run npm run build first`);
}
rmSync(packDir, { recursive: true, force: true });
mkdirSync(packDir, { recursive: true });
copyFileSync(join(agentDir, 'agent-package.json'), join(packDir, 'package.json'));
cpSync(join(agentDir, 'deploy'), join(packDir, 'deploy'), { recursive: true });
for (const part of PARTS) {
  mkdirSync(join(stage, part), { recursive: true });
  cpSync(join(root, 'dist', part), join(stage, part), {
    recursive: true,
    filter: (src) => !/\.spec\.js(\.map)?$|test-fixtures/.test(src),
  });
}
const result = spawnSync('npm', ['pack', '--pack-destination', agentDir], { cwd: packDir, stdio: 'inherit' });
process.exit(result.status ?? 1);
