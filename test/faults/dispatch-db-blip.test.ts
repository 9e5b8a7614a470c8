// Found by the chaos bench: after a PostgreSQL restart no job was placed for ~30 s. A dispatch holds
// a slot on its provider (a scheduler reservation) before it records the placement; when that write
// (or the write of a failed attempt) threw, the slot stayed held until the reservation's 30 s TTL,
// and with every slot held so, nothing could be placed. Now a failed write frees the slot at once.
// One provider with one slot makes the leak visible: the job would wait out the TTL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { matmulSpec } from '../helpers/specs.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';
import { JobsRepository, type TransitionRequest } from '../../apps/coordinator/src/jobs/jobs.repository.js';
import { AttemptsRepository } from '../../apps/coordinator/src/jobs/attempts.repository.js';

const dbError = (): Error => new Error('Connection terminated unexpectedly');

async function completedWithin(c: TestCoordinator, jobId: string, ms: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < ms) {
    const job = await api<{ state: string }>(c.url, 'GET', `/v1/jobs/${jobId}`, { key: c.devKey });
    if (job.body.state === 'COMPLETED') return Date.now() - started;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`job ${jobId} not completed within ${ms} ms`);
}

describe('a database error while dispatching frees the provider slot at once', () => {
  let c: TestCoordinator;
  let agent: FakeAgent;
  beforeAll(async () => {
    c = await startTestCoordinator({ DISPATCH_BACKOFF_MS: '50', CAPACITY_WAIT_MS: '1000' });
    agent = await startFakeAgent(c.url, { slots: 1 });
    for (let i = 0; i < 100; i++) {
      const res = await api<unknown[]>(c.url, 'GET', '/v1/providers');
      if (res.body.length > 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  });
  afterAll(async () => {
    await agent?.stop();
    await c?.close();
  });

  const submit = async (): Promise<string> => {
    const res = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(2, 2, 2, '1'),
    });
    expect(res.status).toBe(201);
    return res.body.id;
  };

  it('when recording the placement fails', async () => {
    const repo = c.running.app.get(JobsRepository);
    const original = repo.transitionWith.bind(repo);
    let failed = 0;
    repo.transitionWith = async (req: TransitionRequest) => {
      if (req.to === 'DISPATCHED' && failed === 0) {
        failed += 1;
        throw dbError();
      }
      return original(req);
    };
    try {
      const ms = await completedWithin(c, await submit(), 15_000);
      expect(failed).toBe(1);
      expect(ms).toBeLessThan(15_000); // with the slot held it took the 30 s reservation TTL
    } finally {
      repo.transitionWith = original;
    }
  });

  it('when recording a failed attempt fails', async () => {
    const attempts = c.running.app.get(AttemptsRepository);
    const original = attempts.settle.bind(attempts);
    let failed = 0;
    attempts.settle = async (...args: Parameters<AttemptsRepository['settle']>) => {
      if (args[1] === 'FAILED' && failed === 0) {
        failed += 1;
        agent.setBehaviour('honest'); // the next offer is taken
        throw dbError();
      }
      return original(...args);
    };
    agent.setBehaviour('reject');
    try {
      const ms = await completedWithin(c, await submit(), 15_000);
      expect(failed).toBe(1);
      expect(ms).toBeLessThan(15_000);
    } finally {
      attempts.settle = original;
      agent.setBehaviour('honest');
    }
  });
});
