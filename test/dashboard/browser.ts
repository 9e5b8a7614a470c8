// Browser-test helpers: Debian's chromium driven by playwright-core (see /work/shared/TOOLCHAIN.md),
// the built dashboard, and screenshots under test-output/dashboard/.
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AxeResults } from 'axe-core';
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

const AXE_SOURCE = readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** The axe-core impacts a page may not have any finding of: all but `minor`. */
const FAILING_IMPACTS: readonly string[] = ['moderate', 'serious', 'critical'];

/** A moderate, serious or critical axe-core finding. */
export interface AxeFinding {
  scheme: string;
  page: string;
  rule: string;
  impact: string;
  nodes: string[];
}

/**
 * Runs axe-core on what the page shows (closed `<details>` opened first, so the JSON blocks in them
 * are checked too) and returns its moderate, serious and critical violations. In dark mode only the
 * colours differ, so only the colour rules run there.
 */
export async function axeFindings(page: Page, scheme: 'light' | 'dark', name: string): Promise<AxeFinding[]> {
  // evaluated over the DevTools protocol (the dashboard's CSP stays as it is); the hash routes keep
  // the document, so once per page load
  if (!(await page.evaluate<boolean>("typeof window.axe === 'object'")))
    await page.evaluate(await AXE_SOURCE);
  const options =
    scheme === 'dark'
      ? "{ runOnly: ['color-contrast'], resultTypes: ['violations'] }"
      : "{ resultTypes: ['violations'] }";
  // a string: the tests are typed without the DOM library
  const results = await page.evaluate<Pick<AxeResults, 'violations'>>(`(async () => {
    for (const d of document.querySelectorAll('details')) d.open = true;
    const r = await window.axe.run(document, ${options});
    return { violations: r.violations };
  })()`);
  return results.violations
    .filter((v) => FAILING_IMPACTS.includes(v.impact ?? ''))
    .map((v) => ({
      scheme,
      page: name,
      rule: v.id,
      impact: v.impact ?? '',
      nodes: v.nodes.map((n) => `${n.target.join(' ')}: ${n.failureSummary ?? ''}`.slice(0, 300)),
    }));
}

/** The focused element of a page, as "TAG: text". */
export function focusedElement(page: Page): Promise<string> {
  return page.evaluate<string>(
    '`${document.activeElement?.tagName}: ${document.activeElement?.textContent}`',
  );
}
