import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const here = fileURLToPath(new URL('.', import.meta.url));

/** The admin dashboard: built to dist/dashboard and served by the coordinator at /dashboard/. */
export default defineConfig({
  root: here,
  base: '/dashboard/',
  plugins: [react()],
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../../dist/dashboard', import.meta.url)),
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 600,
  },
  server: {
    // `npx vite --config apps/dashboard/vite.config.ts` against a coordinator on :8080
    proxy: { '/v1': 'http://127.0.0.1:8080' },
  },
});
