// Monitoring that ships (issue 24, part 7): /health reports each dependency (database, Redis, chain,
// p2p, settlement), /metrics carries provider, settlement, fee, verification and chain gauges, and
// every metric the shipped Grafana dashboard and Prometheus alerts use is one /metrics serves.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';
import { pollUntil } from '../helpers/poll.js';
import { deployForSettlement, settlementEnv, startTestChain, type TestChain } from '../settlement/support.js';

interface HealthBody {
  status: string;
  checks: {
    database: { status: string };
    redis: { status: string };
    chain?: { status: string; chainId: number; blockNumber?: number };
    p2p?: { status: string; peers: number };
    settlement?: { status: string; epochs: Record<string, number>; unfundedBaseUnits: string };
  };
}

let chain: TestChain;
let c: TestCoordinator;
let agent: FakeAgent | undefined;

beforeAll(async () => {
  chain = await startTestChain();
  const addresses = await deployForSettlement(chain, 1, 30);
  c = await startTestCoordinator(settlementEnv(chain, addresses, 1));
  agent = await startFakeAgent(c.url);
}, 120_000);

afterAll(async () => {
  await agent?.stop();
  await c?.close();
  await chain?.stop();
});

async function scrape(): Promise<string> {
  const res = await fetch(`${c.url}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}

/** Metric names a PromQL expression reads (histogram and counter series map to their family). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\b(gpumesh_[a-z0-9_]+)/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, ''));
}

describe('monitoring', () => {
  it('reports every dependency in /health, with the chain, p2p and settlement', async () => {
    const res = await api<HealthBody>(c.url, 'GET', '/health');
    expect(res.status).toBe(200);
    expect(res.body.checks.database.status).toBe('up');
    expect(res.body.checks.redis.status).toBe('up');
    expect(res.body.checks.chain).toMatchObject({ status: 'up', chainId: chain.anvil.chainId });
    expect(res.body.checks.chain?.blockNumber).toBeGreaterThan(0);
    expect(res.body.checks.p2p?.status).toMatch(/^(up|idle)$/);
    expect(res.body.checks.settlement).toMatchObject({ status: 'up', unfundedBaseUnits: '0' });
    expect(res.body.status).toBe('ok');
  });

  it('serves provider, verification, settlement and fee gauges', async () => {
    // the agent re-advertises on its own schedule: under load its advert may be a moment away
    const online = /^gpumesh_providers\{status="ONLINE",online="true"\} 1$/m;
    let text = '';
    await pollUntil(
      'the agent counted online',
      async () => {
        text = await scrape();
        return online.test(text) ? true : undefined;
      },
      20_000,
    ).catch(() => undefined);
    const lines = text.split('\n').filter((l) => /^gpumesh_(providers|gpus)/.test(l));
    expect(text, lines.join('\n')).toMatch(online);
    expect(text).toMatch(/^gpumesh_gpus_online \d+$/m);
    expect(text).toMatch(/^gpumesh_verification_failures_last_hour\{kind="failed_canary"\} 0$/m);
    expect(text).toMatch(/^gpumesh_epoch_posting_lag_seconds \d+$/m);
    expect(text).toMatch(/^gpumesh_platform_fees_unsettled_base_units \d+$/m);
  });

  it('says degraded, still 200, when the chain stops answering', async () => {
    await chain.anvil.stop();
    try {
      const res = await pollUntil(
        'health to see the chain gone',
        async () => {
          const r = await api<HealthBody>(c.url, 'GET', '/health');
          return r.body.checks.chain?.status === 'down' ? r : undefined;
        },
        10_000,
      );
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      expect(res.body.status).toBe('degraded');
      expect(res.body.checks.chain?.status).toBe('down');
      expect(await scrape()).toMatch(/^gpumesh_chain_up 0$/m);
    } finally {
      // the chain stays down for the rest of this file: nothing after this reads it
    }
  });

  it('ships a Grafana dashboard and Prometheus alerts built only on metrics /metrics serves', async () => {
    const served = new Set(
      [...(await scrape()).matchAll(/^# TYPE (gpumesh_[a-z0-9_]+) /gm)].map((m) => m[1]),
    );
    const dashboard = JSON.parse(readFileSync('deploy/grafana/gpumesh.json', 'utf8')) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    // (read as text: one `- alert:` then its `expr:` per rule; no YAML library in the dependencies)
    const alertsText = readFileSync('deploy/prometheus/alerts.yml', 'utf8');
    const rules = [...alertsText.matchAll(/- alert: (\S+)\n\s+expr: (.+)/g)].map((m) => ({
      alert: m[1]!,
      expr: m[2]!,
    }));
    expect(rules.length).toBe((alertsText.match(/- alert:/g) ?? []).length);
    const used = new Map<string, string>();
    for (const p of dashboard.panels)
      for (const t of p.targets) for (const n of metricNames(t.expr)) used.set(n, p.title);
    for (const r of rules) for (const n of metricNames(r.expr)) used.set(n, r.alert);
    expect(used.size).toBeGreaterThan(10);
    for (const [name, where] of used) expect(served.has(name), `${where} uses ${name}`).toBe(true);
    // the alerts the operations issue asks for
    for (const alert of [
      'GpumeshNoProviders',
      'GpumeshQueueGrowing',
      'GpumeshSettlementStuck',
      'GpumeshSettlementUnfunded',
      'GpumeshVerificationFailuresSpike',
      'GpumeshChainUnreachable',
    ])
      expect(rules.map((r) => r.alert)).toContain(alert);
    const scrapeConfig = readFileSync('deploy/prometheus/prometheus.yml', 'utf8');
    expect(scrapeConfig).toMatch(/rule_files:\n\s+- alerts\.yml/);
    expect(scrapeConfig).toMatch(/metrics_path: \/metrics/);
  });
});
