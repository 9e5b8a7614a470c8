#!/usr/bin/env node
// The pre-commit check (scripts/git-hooks/pre-commit): `npm run lint` — ESLint with zero warnings and
// Prettier — on the files staged for the commit only. It checks the files as they are in the working
// tree (stage what you checked). Skip it once with `git commit --no-verify`.
//   node scripts/lint-staged.mjs
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const ESLINT_FILE = /\.(?:[cm]?js|tsx?)$/;

function run(command, args) {
  const result = spawnSync(command, args, { stdio: 'inherit' });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

const staged = spawnSync('git', ['diff', '--cached', '--name-only', '--diff-filter=ACMR', '-z'], {
  encoding: 'utf8',
});
if (staged.status !== 0) {
  process.stderr.write(staged.stderr);
  process.exit(1);
}
const files = staged.stdout.split('\0').filter((f) => f.length > 0);
if (files.length === 0) process.exit(0);

const bin = (name) => join('node_modules', '.bin', name);
const lintable = files.filter((f) => ESLINT_FILE.test(f));
// --no-warn-ignored: a staged file that eslint.config.js ignores (generated/, dist/) is no warning
const eslintFailed =
  lintable.length > 0 &&
  run(bin('eslint'), ['--max-warnings', '0', '--no-warn-ignored', '--', ...lintable]) !== 0;
// --ignore-unknown: files Prettier has no parser for (images, .sol, .prisma) are left alone
const prettierFailed = run(bin('prettier'), ['--check', '--ignore-unknown', '--', ...files]) !== 0;
if (eslintFailed || prettierFailed) {
  console.error(
    'pre-commit: lint failed on staged files (npm run format fixes formatting; --no-verify skips)',
  );
  process.exit(1);
}
