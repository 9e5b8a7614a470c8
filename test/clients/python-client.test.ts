// The Python client (clients/python) against a real coordinator (PostgreSQL, Redis) and two fake
// providers over libp2p (one answers outputs inline, one by ref): its unittest suite runs with the
// coordinator's URL and a funded developer key, once with NumPy (required: .ci/run installs it) and
// once without it (the standard-library path); then the README's example runs as written.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';
import { pollUntil } from '../helpers/poll.js';
import { PYTHON_CLIENT_DIR, runPython } from '../helpers/python.js';

describe('Python client against a running coordinator', () => {
  let c: TestCoordinator;
  let agent: FakeAgent;
  let refAgent: FakeAgent;

  beforeAll(async () => {
    // the suite's webhook receiver listens on 127.0.0.1
    c = await startTestCoordinator({ WEBHOOK_ALLOW_PRIVATE_ADDRESSES: 'true' });
    agent = await startFakeAgent(c.url);
    // outputs by ref, as a real agent sends large ones: the suite's jobs that require the wasm
    // backend run here, so save_output streams and checks one
    refAgent = await startFakeAgent(c.url, { backend: 'wasm', outputsByRef: true });
    await pollUntil(
      'both providers',
      async () => ((await api<unknown[]>(c.url, 'GET', '/v1/providers')).body.length >= 2 ? true : undefined),
      20_000,
    );
  });
  afterAll(async () => {
    await refAgent?.stop();
    await agent?.stop();
    await c?.close();
  });

  it.each<{ mode: string; env: Record<string, string> }>([
    { mode: 'with NumPy', env: { GPUMESH_REQUIRE_NUMPY: '1' } },
    { mode: 'without NumPy', env: { GPUMESH_NUMPY: '0' } },
  ])('passes its unittest suite $mode', async ({ env }) => {
    const run = await runPython(['-m', 'unittest', '-v'], {
      GPUMESH_URL: c.url,
      GPUMESH_API_KEY: c.devKey,
      ...env,
    });
    if (run.code !== 0) console.error(run.output);
    expect(run.code, run.output).toBe(0);
    expect(run.output).toMatch(/^Ran \d+ tests/m);
    expect(run.output).not.toMatch(/skipped/);
  });

  it('runs the README example as written', async () => {
    const readme = await readFile(join(PYTHON_CLIENT_DIR, 'README.md'), 'utf8');
    const example = /```python\n([\s\S]*?)```/.exec(readme)?.[1];
    if (!example) throw new Error('clients/python/README.md has no python example');
    const run = await runPython(['-c', example], { GPUMESH_URL: `${c.url}/v1`, GPUMESH_API_KEY: c.devKey });
    expect(run.code, run.output).toBe(0);
    expect(run.output).toMatch(/^COMPLETED reserved \d+ charged \d+$/m);
    expect(run.output).toMatch(/^max error \d/m);
    expect(run.output).toContain('[[1.0, 2.0], [3.0, 4.0]]');
    expect(run.output).toMatch(/^400 VALIDATION_FAILED maxPricePerUnit - /m);
  });
});
