// Global setup of the integration and e2e tiers: tests that fetch /dashboard/ (the admin API test,
// the REST fuzzer, the browser test) need the built dashboard. `npm test` and `npm run test:e2e`
// build it; a bare `npm run test:integration` or `npx vitest run <file>` on a fresh checkout builds it
// here, once, before any file runs (an existing build is used as it is).
import { ensureDashboardBuilt } from '../dashboard/browser.js';

export default async function setup(): Promise<void> {
  await ensureDashboardBuilt();
}
