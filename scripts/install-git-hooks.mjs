#!/usr/bin/env node
// `npm install` / `npm ci` (the `prepare` script): points git at scripts/git-hooks (the pre-commit
// lint of staged files). Never fails the install: outside a git checkout, in CI, or when the
// repository already uses other hooks (core.hooksPath set to something else), it does nothing.
//   node scripts/install-git-hooks.mjs
import { spawnSync } from 'node:child_process';

const HOOKS = 'scripts/git-hooks';

function git(args) {
  const result = spawnSync('git', args, { encoding: 'utf8' });
  return { ok: !result.error && result.status === 0, out: (result.stdout ?? '').trim() };
}

function main() {
  if (process.env.CI) return 'CI: git hooks not installed';
  if (!git(['rev-parse', '--is-inside-work-tree']).ok) return 'not a git checkout: git hooks not installed';
  const current = git(['config', '--get', 'core.hooksPath']).out;
  if (current === HOOKS) return undefined;
  if (current !== '')
    return `core.hooksPath is ${current}: left alone (${HOOKS}/pre-commit lints staged files)`;
  if (!git(['config', 'core.hooksPath', HOOKS]).ok) return 'could not set core.hooksPath';
  return `git hooks: core.hooksPath = ${HOOKS} (pre-commit lints the staged files)`;
}

try {
  const message = main();
  if (message) console.log(message);
} catch (error) {
  console.log(`git hooks not installed: ${error instanceof Error ? error.message : String(error)}`);
}
