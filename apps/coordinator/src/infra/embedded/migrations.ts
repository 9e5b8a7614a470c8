// Typed access to scripts/migrate.mjs (plain ESM, outside the TypeScript build), found by walking up
// from this file, so it resolves both from the sources and from dist/.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface MigrateModule {
  applyMigrations(databaseUrl: string, options?: { migrationsDir?: string }): Promise<{ applied: string[] }>;
  ensureDatabase(databaseUrl: string): Promise<boolean>;
  DEFAULT_MIGRATIONS_DIR: string;
}

let cached: Promise<MigrateModule> | undefined;

/** The repository (or deployment) root: the nearest ancestor with scripts/migrate.mjs. */
export function findProjectRoot(from: string = path.dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (existsSync(path.join(dir, 'scripts', 'migrate.mjs')) && existsSync(path.join(dir, 'package.json'))) {
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`scripts/migrate.mjs not found above ${from}`);
    dir = parent;
  }
}

export function loadMigrate(): Promise<MigrateModule> {
  cached ??= import(pathToFileURL(path.join(findProjectRoot(), 'scripts', 'migrate.mjs')).href).then(
    (mod: unknown) => mod as MigrateModule,
  );
  return cached;
}

/** Applies the committed migrations (prisma/migrations) to `databaseUrl`; see scripts/migrate.mjs. */
export async function applyMigrations(databaseUrl: string): Promise<{ applied: string[] }> {
  const migrate = await loadMigrate();
  return migrate.applyMigrations(databaseUrl);
}
