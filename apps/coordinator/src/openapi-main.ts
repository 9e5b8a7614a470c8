import { writeFile } from 'node:fs/promises';
import { OPENAPI_FILE, buildOpenApiDocument, serializeOpenApi } from './openapi.js';

/**
 * `npm run openapi`: writes the coordinator's OpenAPI document to docs/openapi.json (or the path
 * given), without PostgreSQL, Redis or a chain.
 */
async function main(): Promise<void> {
  const out = process.argv[2] ?? OPENAPI_FILE;
  await writeFile(out, serializeOpenApi(await buildOpenApiDocument()));
  process.stdout.write(`wrote ${out}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
