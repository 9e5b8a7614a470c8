// Browser-test helpers: Debian's chromium driven by playwright-core (see /work/shared/TOOLCHAIN.md),
// the built dashboard, and screenshots under test-output/dashboard/.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const HAVE_CHROMIUM = existsSync(CHROMIUM);
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SCREENSHOTS = join(root, 'test-output', 'dashboard');

/** Builds the dashboard when `npm run build` has not (a plain `npx vitest run`). */
export async function ensureDashboardBuilt(): Promise<void> {
  if (existsSync(join(root, 'dist', 'dashboard', 'index.html'))) return;
  const { build } = await import('vite');
  await build({ configFile: join(root, 'apps', 'dashboard', 'vite.config.ts'), logLevel: 'warn' });
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}

export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(SCREENSHOTS, { recursive: true });
  const path = join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/**
 * Console errors and uncaught exceptions of a page, except the expected 401/403 of failed sign-ins
 * and the 400 of a setting value the coordinator refuses (the page shows it).
 */
export function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    if (/status of 40[013]/.test(text)) return;
    errors.push(`console: ${text}`);
  });
  return errors;
}
