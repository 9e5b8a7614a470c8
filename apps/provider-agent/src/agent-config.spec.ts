import { describe, expect, it } from 'vitest';
import { AgentConfigError, parseAgentConfig } from './agent-config.js';
import { DEFAULT_ARTIFACT_CACHE_BYTES } from './daemon/artifact-cache.js';

const minimal = {
  version: 1,
  coordinatorUrl: 'http://127.0.0.1:8080',
  bootstrap: ['/ip4/127.0.0.1/tcp/9000/p2p/12D3KooWExample'],
  coordinatorAddress: '0x00000000000000000000000000000000000000aa',
  pricePerUnit: '1',
};

describe('agent.json', () => {
  it('bounds the model artifact cache at 2 GiB unless it says otherwise; 0 keeps none', () => {
    expect(DEFAULT_ARTIFACT_CACHE_BYTES).toBe(2 * 2 ** 30);
    expect(parseAgentConfig(minimal).artifactCacheBytes).toBe(DEFAULT_ARTIFACT_CACHE_BYTES);
    expect(parseAgentConfig({ ...minimal, artifactCacheBytes: 0 }).artifactCacheBytes).toBe(0);
    expect(parseAgentConfig({ ...minimal, artifactCacheBytes: 5 * 2 ** 30 }).artifactCacheBytes).toBe(
      5 * 2 ** 30,
    );
  });

  it('names the cache budget that is wrong and what it takes', () => {
    for (const bad of [-1, 1.5, '2GiB', null, Number.MAX_SAFE_INTEGER + 1]) {
      for (const field of ['artifactCacheBytes', 'tensorCacheBytes']) {
        const parse = (): unknown => parseAgentConfig({ ...minimal, [field]: bad }, 'agent.json');
        expect(parse).toThrow(AgentConfigError);
        expect(parse).toThrow(
          new RegExp(
            `agent\\.json is invalid:\\n  ${field}: a whole number of bytes from 0 \\(keeps no (artifact|tensor)\\)`,
          ),
        );
      }
    }
  });
});
