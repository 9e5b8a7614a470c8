// The agent only dials out by default, and when an owner makes it listen, only its coordinator's
// peers may connect: strangers (a bare libp2p node with a fresh key) are refused by the connection
// gater and hold no connection, so they cost the agent nothing (the issue measured 16 stranger
// connections taking an agent from 369 to 700 MB). Real agent daemon, real libp2p nodes.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { multiaddr } from '@multiformats/multiaddr';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGpumeshNode, dialableAddresses, type GpumeshNode } from '@gpumesh/p2p';
import { agentPaths, parseAgentConfig } from '../../apps/provider-agent/src/agent-config.js';
import { startAgent, type RunningAgent } from '../../apps/provider-agent/src/daemon/agent.js';
import { createKeystore } from '../../apps/provider-agent/src/keystore.js';
import { createExecutorPool } from '../../apps/provider-agent/src/runtime/index.js';
import { COORDINATOR_WALLET, waitFor } from '../p2p/support.js';

const STRANGERS = 16;

describe('agent connection gating', () => {
  let dir: string;
  let coordinator: GpumeshNode;
  const agents: RunningAgent[] = [];
  const strangers: GpumeshNode[] = [];

  const start = async (name: string, listen?: string[]): Promise<RunningAgent> => {
    const { identity } = await createKeystore('gating-test', { light: true });
    const config = parseAgentConfig({
      version: 1,
      coordinatorUrl: 'http://127.0.0.1:9', // nothing answers: /v1/network refreshes fail quietly
      bootstrap: dialableAddresses(coordinator),
      coordinatorAddress: COORDINATOR_WALLET.address.toLowerCase(),
      pricePerUnit: '1',
      ...(listen ? { listen } : {}),
    });
    const pool = await createExecutorPool({ slots: 1, backend: 'cpu', memoryLimitMb: 256 });
    const agent = await startAgent({
      config,
      identity,
      paths: agentPaths(join(dir, name)),
      logger: pino({ level: 'silent' }),
      pool,
    });
    agents.push(agent);
    return agent;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gpumesh-gating-'));
    coordinator = await createGpumeshNode();
  });

  afterAll(async () => {
    for (const a of agents) await a.stop();
    for (const s of strangers) await s.stop();
    await coordinator?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('listens nowhere by default and still reaches its coordinator', async () => {
    const agent = await start('dial-only');
    expect(agent.node.getMultiaddrs()).toEqual([]);
    expect(agent.status().listening).toEqual([]);
    await waitFor(() => agent.status().coordinator.connected, 10_000, 'the coordinator connection');
  });

  it('when it listens, refuses every stranger and keeps serving its coordinator', async () => {
    const agent = await start('listening', ['/ip4/127.0.0.1/tcp/0']);
    const address = agent.node.getMultiaddrs()[0];
    expect(address).toBeDefined();
    await waitFor(() => agent.status().coordinator.connected, 10_000, 'the coordinator connection');

    await Promise.allSettled(
      Array.from({ length: STRANGERS }, async () => {
        const stranger = await createGpumeshNode({ listen: [] });
        strangers.push(stranger);
        await stranger.dial(multiaddr(address.toString()));
      }),
    );
    // The gater refuses each one once it knows who is dialling (after the handshake): the stranger
    // may see its dial complete, but the agent closes the connection at once.
    await waitFor(
      () => agent.node.getConnections().every((c) => c.remotePeer.equals(coordinator.peerId)),
      5_000,
      'no stranger connection left',
    );
    const peers = agent.node.getPeers().map((p) => p.toString());
    expect(peers).toEqual([coordinator.peerId.toString()]);
    await waitFor(
      () => strangers.every((s) => s.getConnections().length === 0),
      5_000,
      'every stranger cut off',
    );

    // Its coordinator may still dial it (a worker re-opening the link).
    await coordinator.hangUp(agent.node.peerId);
    await coordinator.dial(multiaddr(address.toString()));
    await waitFor(() => agent.status().coordinator.connected, 10_000, 'the coordinator back');
  });
});
