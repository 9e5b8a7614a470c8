/**
 * Where to start a worker thread whose module is `<name>.js` beside `base` (a module's
 * import.meta.url). From compiled dist that file itself; from TypeScript sources (vitest) a .mjs
 * bootstrap that installs a TypeScript loader in the thread, then imports `<name>.ts`.
 */
export function workerEntry(base: string, name: string): { url: URL; entry?: string } {
  if (base.endsWith('.ts')) {
    return {
      url: new URL('./ts-worker-bootstrap.mjs', import.meta.url),
      entry: new URL(`./${name}.ts`, base).href,
    };
  }
  return { url: new URL(`./${name}.js`, base) };
}
