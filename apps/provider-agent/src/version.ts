import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The npm package name of the agent (its package.json in a pack, agent-package.json in the repo). */
export const AGENT_PACKAGE_NAME = '@gpumesh/agent';

/**
 * The agent's version from its package.json: the installed package's (dist/apps/provider-agent/src/
 * → the package root), or apps/provider-agent/agent-package.json when run from the monorepo.
 */
export function agentVersion(from: string = import.meta.url): string {
  let dir = dirname(fileURLToPath(from));
  for (let i = 0; i < 8; i++) {
    for (const file of ['package.json', join('apps', 'provider-agent', 'agent-package.json')]) {
      const path = join(dir, file);
      if (!existsSync(path)) continue;
      try {
        const pkg = JSON.parse(readFileSync(path, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === AGENT_PACKAGE_NAME && typeof pkg.version === 'string') return pkg.version;
      } catch {
        // not JSON: keep looking
      }
    }
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  return 'unknown';
}
