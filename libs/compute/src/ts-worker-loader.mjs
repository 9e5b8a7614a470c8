// Module-resolution hooks that let a worker thread load TypeScript sources directly (used only when
// the caller itself runs from .ts, i.e. under vitest; compiled dist uses plain .js): transpiles with
// @swc/core (a devDependency; the thread that starts the worker keeps it loaded, see
// worker-entry.ts), maps `./x.js` imports to `./x.ts`, and adds the `source` condition so
// `@gpumesh/protocol` resolves to libs/protocol/src like tsconfig's customConditions.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
let swc;

export async function resolve(specifier, context, nextResolve) {
  const conditions = context.conditions.includes('source')
    ? context.conditions
    : [...context.conditions, 'source'];
  const ctx = { ...context, conditions };
  const fromTs = context.parentURL !== undefined && context.parentURL.endsWith('.ts');
  if (fromTs && specifier.startsWith('.') && specifier.endsWith('.js')) {
    try {
      return await nextResolve(specifier.slice(0, -3) + '.ts', ctx);
    } catch {
      // fall through: a real .js file
    }
  }
  return nextResolve(specifier, ctx);
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return nextLoad(url, context);
  swc ??= require('@swc/core');
  const source = await readFile(fileURLToPath(url), 'utf8');
  const out = swc.transformSync(source, {
    filename: fileURLToPath(url),
    sourceMaps: 'inline',
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
    module: { type: 'es6' },
  });
  return { format: 'module', source: out.code, shortCircuit: true };
}
