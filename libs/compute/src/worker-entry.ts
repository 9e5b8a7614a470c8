import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
/** The native TypeScript transpiler the worker threads' loader (ts-worker-loader.mjs) uses. */
const TS_TRANSPILER_PACKAGE = '@swc/core';
let transpilerPinned = false;

/**
 * Loads @swc/core (a napi-rs addon) in the calling thread once and keeps it loaded. A Rust addon
 * loaded first by a worker thread is torn down when that thread exits, and the next thread to load
 * it crashes the whole process with SIGSEGV (rust-lang/rust#91979, napi-rs/package-template#308):
 * the second TypeScript worker (a reference runner restarted after its idle stop, or a new runner
 * after close) killed vitest. Loaded by the long-lived thread that starts the workers, the addon is
 * never torn down. Compiled dist starts plain .js workers and never loads it.
 */
function pinTranspiler(): void {
  if (transpilerPinned) return;
  try {
    require(TS_TRANSPILER_PACKAGE);
  } catch (err) {
    throw new Error(
      `a worker thread run from TypeScript sources needs ${TS_TRANSPILER_PACKAGE} (a devDependency): ${(err as Error).message}`,
    );
  }
  transpilerPinned = true;
}

/**
 * Where to start a worker thread whose module is `<name>.js` beside `base` (a module's
 * import.meta.url). From compiled dist that file itself; from TypeScript sources (vitest) a .mjs
 * bootstrap that installs a TypeScript loader in the thread, then imports `<name>.ts` (the caller's
 * thread then holds the loader's native transpiler, see pinTranspiler).
 */
export function workerEntry(base: string, name: string): { url: URL; entry?: string } {
  if (base.endsWith('.ts')) {
    pinTranspiler();
    return {
      url: new URL('./ts-worker-bootstrap.mjs', import.meta.url),
      entry: new URL(`./${name}.ts`, base).href,
    };
  }
  return { url: new URL(`./${name}.js`, base) };
}
