import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyReply, FastifyRequest } from 'fastify';

export const DASHBOARD_PATH = '/dashboard/';

/**
 * Where `vite build` put the dashboard: `dist/dashboard` at the repository root. This file runs
 * from `apps/coordinator/src/admin` (sources, tests) or `dist/apps/coordinator/src/admin` (build).
 */
export function findDashboardDir(): string | null {
  const up = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
  for (const dir of [join(up, 'dist', 'dashboard'), join(up, 'dashboard')]) {
    if (existsSync(join(dir, 'index.html'))) return dir;
  }
  return null;
}

/** Serves the built admin dashboard (a static SPA) at /dashboard/, or says how to build it. */
export async function registerDashboard(app: NestFastifyApplication): Promise<string | null> {
  const dir = findDashboardDir();
  const fastify = app.getHttpAdapter().getInstance();
  if (!dir) {
    const missing = async (_req: FastifyRequest, reply: FastifyReply): Promise<void> => {
      await reply
        .status(503)
        .type('text/plain; charset=utf-8')
        .send('The dashboard is not built: run `npm run build`.\n');
    };
    fastify.get('/dashboard', missing);
    fastify.get('/dashboard/*', missing);
    return null;
  }
  await app.register(fastifyStatic, {
    root: dir,
    prefix: DASHBOARD_PATH,
    decorateReply: false,
    index: ['index.html'],
    // Vite's asset names carry a content hash; index.html must be re-checked on every load.
    setHeaders: (reply, path) => {
      void reply.header(
        'cache-control',
        path.includes(join('assets', '')) ? 'public, max-age=31536000, immutable' : 'no-cache',
      );
    },
  });
  fastify.get('/dashboard', async (_req: FastifyRequest, reply: FastifyReply) => {
    await reply.redirect(DASHBOARD_PATH, 301);
  });
  return dir;
}
