import { randomBytes, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { matmulSpec } from '../helpers/specs.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';
import { query } from '../settlement/support.js';
import {
  HAVE_CHROMIUM,
  CHROMIUM,
  collectPageErrors,
  ensureDashboardBuilt,
  focusedElement,
  launchChromium,
  screenshot,
  axeFindings,
  type AxeFinding,
} from './browser.js';

const nav = (page: Page, name: string) =>
  page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name, exact: true });

interface JobBody {
  id: string;
  state: string;
}

/** Clicks an admin action, gives the reason it asks for, and confirms it. */
async function confirmAction(scope: Page | Locator, label: string, reason: string): Promise<void> {
  await scope.getByRole('button', { name: label, exact: true }).click();
  const form = scope.getByRole('form', { name: `Confirm: ${label}` });
  await form.getByLabel('Reason (kept in the audit log)').fill(reason);
  await form.getByRole('button', { name: `Confirm ${label.toLowerCase()}` }).click();
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// A missing browser is a failure, never a silent skip (.ci/run installs chromium).
if (!HAVE_CHROMIUM) {
  throw new Error(
    `${CHROMIUM} is missing: the dashboard browser tests need it (apt-get install -y chromium; .ci/run installs it)`,
  );
}

describe('admin dashboard in a real browser, against a real coordinator with providers', () => {
  let c: TestCoordinator;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let errors: string[];
  const agents: FakeAgent[] = [];
  let a: FakeAgent;
  let b: FakeAgent;
  /** The job of the ban test (completed before the live-timeline test starts). */
  let earlierJob = '';
  const dashboard = (): string => `${c.url}/dashboard/`;

  beforeAll(async () => {
    const [coordinator, launched] = await Promise.all([
      startTestCoordinator({
        DISPATCH_BACKOFF_MS: '50',
        DISPATCH_ATTEMPTS: '12',
        OFFER_ACCEPT_TIMEOUT_MS: '3000',
      }),
      launchChromium(),
      ensureDashboardBuilt(),
    ]);
    c = coordinator;
    browser = launched;
    a = await startFakeAgent(c.url, { operatorId: 'op-a', pricePerUnit: '1' });
    b = await startFakeAgent(c.url, { operatorId: 'op-b', pricePerUnit: '2' });
    agents.push(a, b);
    await waitFor('2 providers', async () => {
      const res = await api<unknown[]>(c.url, 'GET', '/v1/providers');
      return res.body.length >= 2 ? true : undefined;
    });
    context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
    page = await context.newPage();
    errors = collectPageErrors(page);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    for (const agent of agents) await agent.stop().catch(() => undefined);
    await c?.close();
  });

  it('rejects a bad key and a developer key at sign-in', async () => {
    await page.goto(dashboard());
    const key = page.getByLabel('Admin API key');
    await key.fill('gmk_this-key-does-not-exist');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('unknown or revoked');
    await screenshot(page, '01-sign-in-rejected');
    await key.fill(c.devKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('not an admin key');
    // nothing was let through
    expect(await page.getByRole('navigation', { name: 'Sections' }).count()).toBe(0);
  });

  it('signs in with the admin key and sees the providers, live', async () => {
    await page.getByLabel('Admin API key').fill(c.adminKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    const cookies = await context.cookies(c.url + '/v1/admin');
    const session = cookies.find((k) => k.name === 'gpumesh_admin');
    expect(session?.httpOnly).toBe(true);
    expect(session?.sameSite).toBe('Strict');
    await expect
      .poll(() => page.getByTestId('providers-online').textContent(), { timeout: 10_000 })
      .toBe('2');
    await page.getByText('live', { exact: true }).waitFor();
    // a third provider joins: the overview shows it without a reload
    const third = await startFakeAgent(c.url, { operatorId: 'op-c', pricePerUnit: '3' });
    agents.push(third);
    await expect
      .poll(() => page.getByTestId('providers-online').textContent(), { timeout: 15_000 })
      .toBe('3');
    await screenshot(page, '02-overview');

    await nav(page, 'Providers').click();
    await page.getByTestId('providers-table').waitFor();
    for (const agent of agents) {
      await page.locator(`tr[data-peer="${agent.peerId}"]`).waitFor();
    }
    await screenshot(page, '03-providers');
    await third.stop();
    agents.splice(agents.indexOf(third), 1);
  });

  it('bans a provider: it gets no new work, the other provider does', async () => {
    await page.goto(`${dashboard()}#/providers/${a.peerId}`);
    // an action asks first: Cancel leaves the provider as it was
    await page.getByRole('button', { name: 'Ban', exact: true }).click();
    await page.getByRole('form', { name: 'Confirm: Ban' }).getByRole('button', { name: 'Cancel' }).click();
    expect(await page.getByTestId('provider-status').textContent()).toBe('online');
    await confirmAction(page, 'Ban', 'returns junk on purpose (dashboard test)');
    await expect.poll(() => page.getByTestId('provider-status').textContent()).toBe('banned');
    await screenshot(page, '04-provider-banned');

    const offersA = a.offers;
    const offersB = b.offers;
    const job = await api<JobBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(2, 2, 2, '5'),
    });
    expect(job.status).toBe(201);
    await waitFor('job completed', async () => {
      const res = await api<JobBody>(c.url, 'GET', `/v1/jobs/${job.body.id}`, { key: c.devKey });
      return res.body.state === 'COMPLETED' ? true : undefined;
    });
    expect(a.offers).toBe(offersA); // the banned provider was offered nothing
    expect(b.offers).toBe(offersB + 1);
    earlierJob = job.body.id;

    await page.goto(`${dashboard()}#/jobs/${job.body.id}`);
    await expect.poll(() => page.getByTestId('job-state').textContent()).toBe('completed');
    // charged (what the ledger debited) apart from reserved, with what it is made of
    const charges = await api<{ charged: string; chargedBreakdown: { fee: string } }>(
      c.url,
      'GET',
      `/v1/jobs/${job.body.id}`,
      { key: c.devKey },
    );
    const charged = await page.getByTestId('job-charged').textContent();
    expect(charged).toContain('platform fee');
    expect(charged).toContain('work');
    expect(Number(charges.body.charged)).toBeGreaterThan(0);
    expect(await page.locator(`a[href="#/providers/${b.peerId}"]`).count()).toBeGreaterThan(0);
    expect(await page.locator(`a[href="#/providers/${a.peerId}"]`).count()).toBe(0);
  });

  it("follows a job's timeline live as it is placed, runs and completes", async () => {
    // drain the other provider too: nothing can take the next job
    await page.goto(`${dashboard()}#/providers/${b.peerId}`);
    await confirmAction(page, 'Drain', 'maintenance (dashboard test)');
    await expect.poll(() => page.getByTestId('provider-status').textContent()).toBe('draining');

    const job = await api<JobBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(3, 3, 3, '5'),
    });
    await page.goto(`${dashboard()}#/jobs/${job.body.id}`);
    await expect.poll(() => page.getByTestId('job-state').textContent()).toBe('queued');
    await page.getByText('following live').waitFor();
    expect(await page.locator('[data-testid="timeline"] li[data-type="job.running"]').count()).toBe(0);

    // lift the drain through the API (as another admin would): the open page must follow by itself
    const undrain = await api(c.url, 'POST', `/v1/admin/providers/${b.peerId}/undrain`, {
      key: c.adminKey,
      body: { reason: 'maintenance over' },
    });
    expect(undrain.status).toBe(200);
    await page.locator('[data-testid="timeline"] li[data-type="job.running"]').waitFor({ timeout: 20_000 });
    await page.locator('[data-testid="timeline"] li[data-type="job.completed"]').waitFor({ timeout: 20_000 });
    // the live event shows at once; the state comes with the page's reload of the job (slow under load)
    await expect
      .poll(() => page.getByTestId('job-state').textContent(), { timeout: 20_000 })
      .toBe('completed');
    await screenshot(page, '05-job-timeline');

    // Another job's page (same page component, only the hash changes) shows only that job's events,
    // none of the live ones just received for this one.
    const liveHere = await page.locator('[data-testid="timeline"] li').count();
    const other = await api<{ events: unknown[] }>(c.url, 'GET', `/v1/admin/jobs/${earlierJob}`, {
      key: c.adminKey,
    });
    await page.goto(`${dashboard()}#/jobs/${earlierJob}`);
    await page.getByRole('heading', { name: `Job ${earlierJob}` }).waitFor();
    await expect
      .poll(() => page.locator('[data-testid="timeline"] li').count())
      .toBe(other.body.events.length);
    expect(liveHere).toBeGreaterThan(0);

    await nav(page, 'Jobs').click();
    await page.locator(`tr[data-job="${job.body.id}"]`).waitFor();
    await screenshot(page, '06-jobs');
  });

  it('shows accounts, epochs (with a ledger audit) and settings', async () => {
    await nav(page, 'Accounts').click();
    await page.getByTestId('accounts-table').waitFor();
    await screenshot(page, '07-accounts');
    await page.getByTestId('accounts-table').locator('a').first().click();
    await page.getByRole('heading', { name: 'API keys' }).waitFor();
    await screenshot(page, '08-account');

    await nav(page, 'Epochs & payouts').click();
    // the ledger as a CSV file, every entry (the coordinator's export, with the session cookie)
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByTestId('export-ledger').click(),
    ]);
    expect(download.suggestedFilename()).toMatch(/^gpumesh-ledger-[\dTZ-]+\.csv$/);
    const lines = (await readFile(await download.path(), 'utf8')).split('\r\n');
    expect(lines[0]).toBe(
      'id,created_at,tx_id,kind,account,account_kind,amount,job_id,epoch_id,payee_peer_id,payout_address',
    );
    const [{ n }] = await query<{ n: number }>(c.databaseUrl, 'SELECT count(*)::int AS n FROM "LedgerEntry"');
    expect(lines.length).toBe(n + 2); // the header, the entries, and the empty text after the last CRLF
    await page.getByRole('button', { name: 'Audit the ledger' }).click();
    await expect.poll(() => page.getByTestId('audit').textContent()).toContain('Ledger audit passed');
    await screenshot(page, '09-epochs');

    await nav(page, 'Settings').click();
    await page.getByText('DEFAULT_DEADLINE_SECONDS').waitFor();
    await screenshot(page, '10-settings');
  });

  it('edits settings: a bad value is refused with the field named, a good one is stored', async () => {
    await nav(page, 'Settings').click();
    const verification = page.locator('form[data-setting="verification"]');
    await verification.getByLabel('Canary rate (0–0.5)').fill('0.9');
    await verification.getByLabel('Reason for the change (kept in the audit log)').fill('more canaries');
    await verification.getByRole('button', { name: 'Save' }).click();
    await expect
      .poll(() => verification.getByRole('alert').textContent())
      .toContain('verification.canaryRate: expected 0..0.5');
    await screenshot(page, '15-settings-invalid');

    const fee = page.locator('form[data-setting="platformFeeBps"]');
    await fee.getByLabel('Fee (basis points, 0–10000)').fill('250');
    await fee.getByLabel('Reason for the change (kept in the audit log)').fill('fee for the demo');
    await fee.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => fee.getByRole('status').textContent()).toContain('Saved: 2.50 % (250 bps)');
    await expect
      .poll(() => page.getByTestId('setting-value-platformFeeBps').textContent())
      .toBe('2.50 % (250 bps)');
    const stored = await api<{ key: string; current: unknown; overridden: boolean; updatedBy: string }[]>(
      c.url,
      'GET',
      '/v1/admin/settings',
      { key: c.adminKey },
    );
    expect(stored.body.find((x) => x.key === 'platformFeeBps')).toMatchObject({
      current: 250,
      overridden: true,
      updatedBy: '0x70997970c51812dc3a010c7d01b50e0d17dc79c8',
    });
    await screenshot(page, '16-settings-saved');
    // and back to the configured default
    await fee.getByLabel('Reason for the change (kept in the audit log)').fill('demo over');
    await fee.getByRole('button', { name: 'Reset to default' }).click();
    await expect.poll(() => fee.getByRole('status').textContent()).toContain('Back to the default');
  });

  it("shows a provider's stake, reputation history and slashes; an admin cancels a proposed slash", async () => {
    // What the verification flow writes when it catches a provider (seeded here directly).
    const peer = a.peerId;
    const start = Date.now() - 10 * 60_000;
    let score = 0.5;
    for (const [i, [kind, delta]] of (
      [
        ['completed', 0.02],
        ['completed', 0.02],
        ['latency', -0.01],
        ['verification_failed', -0.4],
        ['banned', 0],
      ] as const
    ).entries()) {
      score = Math.max(0, score + delta);
      await query(
        c.databaseUrl,
        `INSERT INTO "ReputationEvent" ("peerId", kind, delta, score, "createdAt") VALUES ($1, $2, $3, $4, $5)`,
        [peer, kind, delta, score, new Date(start + i * 60_000)],
      );
    }
    const slash = async (state: string, executeAfter: Date, txHash: string | null): Promise<string> => {
      const evidenceId = randomUUID();
      const hash = `0x${randomBytes(32).toString('hex')}`;
      await query(
        c.databaseUrl,
        `INSERT INTO "Evidence" (id, "jobId", "attemptId", "peerId", bundle, "bundleHash") VALUES ($1, $2, $3, $4, '{}', $5)`,
        [evidenceId, randomUUID(), randomUUID(), peer, hash],
      );
      const id = randomUUID();
      await query(
        c.databaseUrl,
        `INSERT INTO "SlashProposal" (id, "peerId", "operatorAddress", "evidenceId", "evidenceHash", amount, reason, state, "executeAfter", "txHash", "updatedAt")
           VALUES ($1, $2, $3, $4, $5, 25000000, 'wrong result in a redundant job', $6::"SlashState", $7, $8, now())`,
        [id, peer, a.address, evidenceId, hash, state, executeAfter, txHash],
      );
      return id;
    };
    const executed = await slash('EXECUTED', new Date(start), `0x${'ab'.repeat(32)}`);
    const proposed = await slash('PROPOSED', new Date(Date.now() + 3_600_000), null);

    await page.goto(`${dashboard()}#/providers/${peer}`);
    const history = page.getByTestId('reputation-history');
    await history.getByRole('img').waitFor();
    expect(await history.getByRole('img').getAttribute('aria-label')).toContain('5 events');
    await history.getByText('Events (5)').click();
    await history.locator('tr[data-kind="verification_failed"]').waitFor();
    await expect.poll(() => page.getByTestId('provider-stake').textContent()).toContain('no chain');
    const table = page.getByTestId('slashes-table');
    await table.locator(`tr[data-slash="${executed}"][data-state="EXECUTED"]`).waitFor();
    expect(await table.locator(`tr[data-slash="${executed}"]`).textContent()).toContain('25');
    await screenshot(page, '13-provider-reputation-slashes');

    await confirmAction(
      table.locator(`tr[data-slash="${proposed}"]`),
      'Cancel slash',
      'evidence reviewed: wrong reference',
    );
    await table.locator(`tr[data-slash="${proposed}"][data-state="CANCELLED"]`).waitFor();
    const rows = await query<{ state: string; reviewedBy: string }>(
      c.databaseUrl,
      'SELECT state::text, "reviewedBy" FROM "SlashProposal" WHERE id = $1',
      [proposed],
    );
    expect(rows[0]).toEqual({
      state: 'CANCELLED',
      reviewedBy: '0x70997970c51812dc3a010c7d01b50e0d17dc79c8',
    });

    await nav(page, 'Slashes').click();
    await page.getByRole('heading', { name: 'Slashes' }).waitFor();
    await page.getByTestId('slashes-table').locator(`tr[data-slash="${executed}"]`).waitFor();
    await screenshot(page, '14-slashes');
  });

  it('lists every admin action in the audit log, filterable', async () => {
    await nav(page, 'Audit log').click();
    const log = page.getByTestId('audit-log');
    await log.locator('tr[data-action="provider.ban"]').waitFor();
    expect(await log.locator('tr[data-action="provider.ban"]').textContent()).toContain(
      'returns junk on purpose (dashboard test)',
    );
    for (const action of ['provider.drain', 'provider.undrain', 'setting.change', 'slash.cancel'])
      await log.locator(`tr[data-action="${action}"]`).first().waitFor();
    await screenshot(page, '17-audit-log');
    await page
      .getByRole('form', { name: 'Filter the audit log' })
      .getByLabel('Action')
      .selectOption('setting.change');
    await page.getByRole('button', { name: 'Filter' }).click();
    await expect.poll(() => log.locator('tr[data-action]').count()).toBe(2);
    expect(await log.locator('tr[data-action="provider.ban"]').count()).toBe(0);
  });

  it('has nothing moderate, serious or critical for axe-core on any page, light and dark, desktop and phone', async () => {
    // a week of stored history (what the per-minute rollup writes), a minute of every hour but for a
    // day off, for the 7-day view
    await query(
      c.databaseUrl,
      `INSERT INTO "StatsRollup" (minute, "providersOnline", slots, "freeSlots", "queueDepth", "activeJobs",
         submitted, completed, failed)
       SELECT date_trunc('minute', now() AT TIME ZONE 'UTC') - make_interval(hours => i),
              2 + i / 24 % 3, 8, 6, i % 5, 1, 10 + i % 7, 9 + i % 7, i % 2
       FROM generate_series(1, 166) AS i WHERE i / 24 <> 3`,
    );
    const accounts = await api<{ id: string }[]>(c.url, 'GET', '/v1/admin/accounts', { key: c.adminKey });
    const pages: [string, string][] = [
      ['overview', '#/overview'],
      ['providers', '#/providers'],
      ['provider', `#/providers/${a.peerId}`],
      ['jobs', '#/jobs'],
      ['job', `#/jobs/${earlierJob}`],
      ['accounts', '#/accounts'],
      ['account', `#/accounts/${accounts.body[0]?.id ?? 'none'}`],
      ['slashes', '#/slashes'],
      ['epochs', '#/epochs'],
      ['settings', '#/settings'],
      ['audit log', '#/audit-log'],
    ];
    const findings: AxeFinding[] = [];
    let checked = 0;
    const desktop = { width: 1366, height: 900 };
    const phone = { width: 390, height: 844 };
    const ctx = await browser.newContext({ viewport: desktop });
    const tab = await ctx.newPage();
    const tabErrors = collectPageErrors(tab);
    /** Each page as it is, then in the dark scheme (only the colours change: no reload). */
    const check = async (name: string): Promise<void> => {
      const at = `${name} @${tab.viewportSize()?.width ?? 0}px`;
      findings.push(...(await axeFindings(tab, 'light', at)));
      await tab.emulateMedia({ colorScheme: 'dark' });
      findings.push(...(await axeFindings(tab, 'dark', at)));
      await tab.emulateMedia({ colorScheme: 'light' });
      checked += 1;
    };
    // the sign-in page, showing its error, at both widths
    await tab.goto(dashboard());
    await tab.getByLabel('Admin API key').fill('gmk_this-key-does-not-exist');
    await tab.getByRole('button', { name: 'Sign in' }).click();
    await tab.getByRole('alert').waitFor();
    await check('sign-in');
    await tab.setViewportSize(phone);
    await check('sign-in');
    await tab.setViewportSize(desktop);
    await tab.getByLabel('Admin API key').fill(c.adminKey);
    await tab.getByRole('button', { name: 'Sign in' }).click();
    await tab.getByRole('heading', { name: 'Overview' }).waitFor();
    for (const viewport of [desktop, phone]) {
      await tab.setViewportSize(viewport);
      for (const [name, hash] of pages) {
        await tab.goto(`${dashboard()}${hash}`);
        await tab.locator('main h1').first().waitFor();
        await expect.poll(() => tab.locator('.loading').count()).toBe(0);
        if (name === 'overview') await tab.getByText('live', { exact: true }).waitFor();
        await check(name);
        if (name === 'overview') {
          // the stored history, a week of it
          await tab
            .getByRole('group', { name: 'History range' })
            .getByRole('button', { name: '7 days' })
            .click();
          await tab.locator('[data-testid="history"][data-range="7d"]').waitFor();
          await expect.poll(() => tab.locator('.loading').count()).toBe(0);
          await tab.getByText('Jobs per hour (7 days)').waitFor();
          await screenshot(tab, `19-overview-7-days-${viewport.width}`);
          await check('overview, 7 days');
        }
      }
    }
    await tab.emulateMedia({ colorScheme: 'dark' });
    await screenshot(tab, '18-audit-log-dark');
    expect(tabErrors).toEqual([]);
    await ctx.close();
    expect(checked).toBe(2 * (pages.length + 2));
    expect(findings).toEqual([]);
  }, 240_000);

  it('works at phone width and by keyboard', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${dashboard()}#/overview`);
    await page.getByTestId('providers-online').waitFor();
    await screenshot(page, '11-overview-phone');
    await page.goto(`${dashboard()}#/providers/${a.peerId}`);
    await page.getByTestId('provider-status').waitFor();
    await screenshot(page, '12-provider-phone');
    // keyboard: the skip link comes first, then the navigation; Enter follows a link
    await page.reload();
    await page.getByTestId('provider-status').waitFor();
    await page.keyboard.press('Tab');
    expect(await page.locator(':focus').textContent()).toBe('Skip to content');
    // the skip link focuses the content and stays on the page (it used to route to the overview)
    const here = new URL(page.url()).hash;
    await page.keyboard.press('Enter');
    expect(await page.evaluate<string>("document.activeElement?.id ?? ''")).toBe('main');
    expect(new URL(page.url()).hash).toBe(here);
    await nav(page, 'Jobs').focus();
    await page.keyboard.press('Enter');
    // a navigation moves the focus to the new page's heading, also when it comes with the page's data
    await expect.poll(() => focusedElement(page), { timeout: 15_000 }).toBe('H1: Jobs');
    await page.locator(`tr[data-job="${earlierJob}"] a`).first().click();
    await expect.poll(() => focusedElement(page), { timeout: 15_000 }).toBe(`H1: Job ${earlierJob}`);
    await page.setViewportSize({ width: 1366, height: 900 });
  });

  it('signs out: the session is revoked and the API refuses the old cookie', async () => {
    const before = await context.cookies(c.url + '/v1/admin');
    const token = before.find((k) => k.name === 'gpumesh_admin')?.value ?? '';
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Admin API key').waitFor();
    const res = await fetch(`${c.url}/v1/admin/overview`, {
      headers: { cookie: `gpumesh_admin=${token}` },
    });
    expect(res.status).toBe(401);
    expect(errors).toEqual([]);
  });
});
