import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The npm package name of the agent (apps/provider-agent/package.json). */
export const AGENT_PACKAGE_NAME = '@gpumesh/agent';

/**
 * The agent's version from its package.json, the nearest one above this file named @gpumesh/agent:
 * apps/provider-agent/package.json from src/ or dist/ in the monorepo, the package root installed.
 */
export function agentVersion(from: string = import.meta.url): string {
  let dir = dirname(fileURLToPath(from));
  for (let i = 0; i < 8; i++) {
    const path = join(dir, 'package.json');
    if (existsSync(path)) {
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
