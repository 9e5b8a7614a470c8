// Where the developer commands find the coordinator and the API key: flags, then the environment
// (GPUMESH_COORDINATOR, GPUMESH_API_KEY), then the credentials `gpumesh login` stored in
// ~/.config/gpumesh/credentials.json (mode 0600; $XDG_CONFIG_HOME or $GPUMESH_CONFIG_DIR move it).
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export const DEFAULT_COORDINATOR = 'http://127.0.0.1:8080';

/** What `gpumesh login` stores. The API key is a secret: never print it. */
export interface StoredCredentials {
  coordinator: string;
  apiKey: string;
  address: string;
  accountId: string;
  keyPrefix: string;
  createdAt: string;
}

/** The credentials file for this environment. */
export function credentialsPath(env: NodeJS.ProcessEnv): string {
  const dir =
    env.GPUMESH_CONFIG_DIR ?? join(env.XDG_CONFIG_HOME ?? join(env.HOME ?? homedir(), '.config'), 'gpumesh');
  return join(dir, 'credentials.json');
}

/** The stored credentials, or null when there are none. */
export async function loadCredentials(env: NodeJS.ProcessEnv): Promise<StoredCredentials | null> {
  const path = credentialsPath(env);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const parsed = JSON.parse(text) as Partial<StoredCredentials>;
    if (typeof parsed.apiKey !== 'string' || typeof parsed.coordinator !== 'string')
      throw new Error('fields');
    return parsed as StoredCredentials;
  } catch {
    throw new Error(`${path} is not a gpumesh credentials file: run gpumesh login again`);
  }
}

/** Writes the credentials readable by their owner only (0600, in a 0700 directory), atomically. */
export async function saveCredentials(
  env: NodeJS.ProcessEnv,
  credentials: StoredCredentials,
): Promise<string> {
  const path = credentialsPath(env);
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
  return path;
}

/** The coordinator URL without a trailing slash; throws a TypeError when it is not a URL. */
export function normaliseUrl(url: string): string {
  const parsed = new URL(url);
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new TypeError(`not an http(s) URL: ${url}`);
  return url.replace(/\/+$/, '');
}

/** The coordinator and API key a command uses: --coordinator, then the environment, then the file. */
export async function resolveTarget(
  env: NodeJS.ProcessEnv,
  coordinatorFlag: string | undefined,
): Promise<{ coordinator: string; apiKey: string | null; stored: StoredCredentials | null }> {
  const stored = await loadCredentials(env);
  const coordinator = normaliseUrl(
    coordinatorFlag ?? env.GPUMESH_COORDINATOR ?? stored?.coordinator ?? DEFAULT_COORDINATOR,
  );
  // A stored key belongs to the coordinator it was made on.
  const apiKey = env.GPUMESH_API_KEY || (stored && stored.coordinator === coordinator ? stored.apiKey : null);
  return { coordinator, apiKey, stored };
}
