import { fileURLToPath } from 'node:url';
import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

const root = fileURLToPath(new URL('.', import.meta.url));
const alias = {
  '#protocol': `${root}libs/protocol/src/index.ts`,
  '#scheduler': `${root}libs/scheduler/src/index.ts`,
  '#rewards': `${root}libs/rewards/src/index.ts`,
  '#p2p': `${root}libs/p2p/src/index.ts`,
  '#compute': `${root}libs/compute/src/index.ts`,
  '#verification': `${root}libs/verification/src/index.ts`,
  '#prisma': `${root}generated/prisma/client.ts`,
};

const swcPlugin = swc.vite({
  jsc: {
    parser: { syntax: 'typescript', decorators: true },
    transform: { decoratorMetadata: true, legacyDecorator: true },
    target: 'es2022',
  },
});

export default defineConfig({
  resolve: { alias },
  test: {
    projects: [
      {
        plugins: [swcPlugin],
        resolve: { alias },
        test: {
          name: 'unit',
          include: ['apps/**/*.spec.ts', 'libs/**/*.spec.ts'],
          setupFiles: ['./test/setup/polyfills.ts'],
        },
      },
      {
        plugins: [swcPlugin],
        resolve: { alias },
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          setupFiles: ['./test/setup/polyfills.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
