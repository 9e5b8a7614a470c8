import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { agentPaths } from '../agent-config.js';
import type { AgentStatus } from '../daemon/agent.js';
import {
  artifactCacheLine,
  formatBytes,
  formatDuration,
  marketLine,
  parseArtifactCache,
  parseCacheSizes,
  parseMaxDisconnected,
  parseTensorCache,
  statusCommand,
  tensorCacheLine,
} from './commands.js';
import { CliError, type Output } from './output.js';

describe('status and init helpers', () => {
  it('formats durations for status', () => {
    expect([0, 12_400, 65_000, 3 * 3_600_000 + 120_000, 50 * 3_600_000].map(formatDuration)).toEqual([
      '0 s',
      '12 s',
      '1 min 5 s',
      '3 h 2 min',
      '2 d 2 h',
    ]);
  });

  it("places the owner's price in the market's live range", () => {
    const market = { providers: 3, min: '2', median: '4', max: '9', feeBps: 500 };
    expect(marketLine(market, '1')).toMatch(
      /3 live provider\(s\) charge 2 \(min\) \/ 4 \(median\) \/ 9 \(max\); yours is below every live provider; the platform keeps 5\.00%/,
    );
    expect(marketLine(market, '4')).toMatch(/inside the live range/);
    expect(marketLine(market, '10')).toMatch(/above every live provider/);
    expect(marketLine({ ...market, providers: 0, min: null, median: null, max: null }, '1')).toMatch(
      /no provider is live/,
    );
    expect(marketLine({ error: 'HTTP 404' }, '1')).toBe('price range unknown (HTTP 404)');
  });

  it('reads --max-disconnected as whole seconds, 0 = never', () => {
    expect(parseMaxDisconnected(undefined)).toBeUndefined();
    expect(parseMaxDisconnected('0')).toBe(0);
    expect(parseMaxDisconnected('600')).toBe(600);
    for (const bad of ['-1', '1.5', 'ten', '']) expect(() => parseMaxDisconnected(bad)).toThrow(CliError);
  });

  it('reads --tensor-cache as bytes or binary units, 0 = no cache', () => {
    expect(parseTensorCache(undefined)).toBeUndefined();
    expect(parseTensorCache('0')).toBe(0);
    expect(parseTensorCache('4096')).toBe(4096);
    expect(parseTensorCache('512MiB')).toBe(512 * 2 ** 20);
    expect(parseTensorCache('20 GiB')).toBe(20 * 2 ** 30);
    for (const bad of ['-1', '1.5GiB', '1GB', 'lots', '', '99999999999999TiB'])
      expect(() => parseTensorCache(bad)).toThrow(CliError);
    expect([0, 1023, 1536, 3 * 2 ** 30].map(formatBytes)).toEqual(['0 B', '1023 B', '1.5 KiB', '3.0 GiB']);
  });

  it('reads --artifact-cache like --tensor-cache, and names the flag that is wrong', () => {
    expect(parseArtifactCache(undefined)).toBeUndefined();
    expect(parseArtifactCache('0')).toBe(0);
    expect(parseArtifactCache('4096')).toBe(4096);
    expect(parseArtifactCache('512MiB')).toBe(512 * 2 ** 20);
    expect(parseArtifactCache('20 GiB')).toBe(20 * 2 ** 30);
    for (const bad of ['-1', '1.5GiB', '1GB', 'lots', '', '99999999999999TiB']) {
      expect(() => parseArtifactCache(bad)).toThrow(CliError);
      expect(() => parseArtifactCache(bad)).toThrow(/^--artifact-cache must be a size/);
      expect(() => parseTensorCache(bad)).toThrow(/^--tensor-cache must be a size/);
    }
    // only the sizes given go into agent.json (init) or this run's config (start)
    expect(parseCacheSizes({})).toEqual({});
    expect(parseCacheSizes({ artifactCache: '8GiB' })).toEqual({ artifactCacheBytes: 8 * 2 ** 30 });
    expect(parseCacheSizes({ tensorCache: '0', artifactCache: '0' })).toEqual({
      tensorCacheBytes: 0,
      artifactCacheBytes: 0,
    });
    expect(() => parseCacheSizes({ tensorCache: '1GiB', artifactCache: '2GB' })).toThrow('--artifact-cache');
  });

  it("shows the tensor cache's figures in status", () => {
    const stats = {
      budgetBytes: 2 ** 30,
      entries: 3,
      bytes: 3 * 2 ** 20,
      hits: 7,
      misses: 3,
      sharedFetches: 2,
      bytesSaved: 9 * 2 ** 20,
      evictions: 1,
      dropped: 0,
      writeErrors: 0,
    };
    expect(tensorCacheLine(stats)).toBe(
      '7 hit(s), 3 miss(es), 2 shared fetch(es), 9.0 MiB not transferred; 3 tensor(s), 3.0 MiB of 1.0 GiB; 1 evicted, 0 corrupt dropped',
    );
    expect(tensorCacheLine({ ...stats, budgetBytes: 0 })).toBe(
      'off (tensorCacheBytes 0); 2 fetch(es) shared between jobs',
    );
  });

  it("shows the model artifact cache's figures in status, beside the tensor cache's, and in --json", async () => {
    const stats = {
      budgetBytes: 2 * 2 ** 30,
      entries: 2,
      bytes: 300 * 2 ** 20,
      hits: 5,
      misses: 2,
      bytesSaved: 750 * 2 ** 20,
      evictions: 4,
      dropped: 1,
      writeErrors: 0,
    };
    expect(artifactCacheLine(stats)).toBe(
      '5 hit(s), 2 miss(es), 750.0 MiB not transferred; 2 model(s), 300.0 MiB of 2.0 GiB; 4 evicted, 1 corrupt dropped',
    );
    expect(artifactCacheLine({ ...stats, budgetBytes: 0 })).toBe('off (artifactCacheBytes 0)');

    const dataDir = await mkdtemp(join(tmpdir(), 'agent-status-'));
    try {
      const status: AgentStatus = {
        peerId: '12D3KooWExample',
        address: '0x00000000000000000000000000000000000000aa',
        backend: 'wasm',
        gflops: 1,
        slots: 1,
        running: 0,
        completed: 3,
        failed: 0,
        reportedAttempts: 3,
        earned: '0',
        peers: [],
        coordinatorConnected: true,
        coordinator: {
          connected: true,
          since: Date.now(),
          connectedPeers: [],
          failedRounds: 0,
          lastError: null,
          addresses: [],
          exitAt: null,
        },
        listening: [],
        epochFiles: [],
        tensorCache: { ...stats, sharedFetches: 0 },
        artifactCache: stats,
        pid: process.pid,
        version: 'test',
        startedAt: Date.now(),
        updatedAt: Date.now(),
      };
      await writeFile(agentPaths(dataDir).status, JSON.stringify(status));
      const printed: { value?: unknown; human?: string } = {};
      const capture = (json: boolean): Output => ({
        json,
        line: () => undefined,
        result: (value, human) => {
          printed.value = value;
          printed.human = json ? undefined : human();
        },
        progress: () => undefined,
        done: () => undefined,
      });
      await statusCommand({ dataDir, json: false, env: {} }, capture(false));
      const lines = (printed.human ?? '').split('\n');
      const tensorLine = lines.findIndex((l) => l.startsWith('  tensor cache '));
      expect(lines[tensorLine + 1]).toBe(`  model cache  ${artifactCacheLine(stats)}`);
      await statusCommand({ dataDir, json: true, env: {} }, capture(true));
      expect(printed.value).toMatchObject({ artifactCache: stats });
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
