// Epoch data availability between real libp2p nodes: a coordinator announces a posted epoch on the
// epochs topic (signed, replay-safe, only its own wallet is followed) and serves the file by hash;
// an agent fetches and checks it, then serves it to a third peer. Liars are caught by the hash.
import {
  EpochFileError,
  GossipValidationCounter,
  fetchEpochFile,
  fetchEpochFileFromAny,
  handleEpochFileRequests,
  startGossip,
  type GossipService,
  type GpumeshNode,
} from '@gpumesh/p2p';
import {
  EPOCHS_TOPIC,
  PROTOCOL_VERSION,
  signPayload,
  type EpochAnnouncement,
  type Signed,
} from '@gpumesh/protocol';
import { keccak256Hex } from '@gpumesh/rewards';
import { Wallet } from 'ethers';
import { afterEach, describe, expect, it } from 'vitest';

import {
  COORDINATOR_WALLET,
  OTHER_PROVIDER_WALLET,
  connect,
  startNodes,
  stopNodes,
  waitFor,
} from './support.js';

const hash = (bytes: Uint8Array): string => keccak256Hex(bytes);
const FILE = new TextEncoder().encode(
  JSON.stringify({
    epoch: 3,
    leaves: Array.from({ length: 3000 }, (_, i) => ({ index: i, amount: `${i}` })),
  }),
);
const FILE_HASH = hash(FILE);

async function announcement(wallet: Wallet, peerId: string, seq: number): Promise<Signed<EpochAnnouncement>> {
  const now = Date.now();
  return signPayload(
    'epoch',
    {
      version: PROTOCOL_VERSION,
      peerId,
      seq,
      issuedAt: now,
      expiresAt: now + 60_000,
      chainId: 31337,
      distributor: `0x${'ab'.repeat(20)}`,
      epoch: 3,
      root: `0x${'cd'.repeat(32)}`,
      fileHash: FILE_HASH,
      size: FILE.byteLength,
    },
    wallet,
  );
}

describe('epoch files over p2p', () => {
  let nodes: GpumeshNode[] = [];
  let gossips: GossipService[] = [];
  afterEach(async () => {
    for (const g of gossips) g.stop();
    await stopNodes(nodes);
    nodes = [];
    gossips = [];
  });

  it('announces a posted epoch to followers only once, and the file travels coordinator → agent → peer', async () => {
    const [coordinator, agent, peer] = await startNodes(3);
    nodes = [coordinator, agent, peer];
    await handleEpochFileRequests(coordinator, {
      getFile: async (fileHash) => (fileHash === FILE_HASH ? FILE : undefined),
    });
    const held = new Map<string, Uint8Array>();
    await handleEpochFileRequests(agent, { getFile: async (fileHash) => held.get(fileHash) });
    const received: Signed<EpochAnnouncement>[] = [];
    const metrics = new GossipValidationCounter();
    const announcer = startGossip(coordinator, {});
    const follower = startGossip(agent, {
      metrics,
      isTrustedEpochAnnouncer: (signer) => signer === COORDINATOR_WALLET.address.toLowerCase(),
      handlers: { epoch: (signed) => void received.push(signed) },
    });
    gossips = [announcer, follower];
    await connect(agent, coordinator);
    await waitFor(
      () => announcer.topicPeers('epoch').includes(agent.peerId.toString()),
      10_000,
      'subscription',
    );

    const signed = await announcement(COORDINATOR_WALLET, coordinator.peerId.toString(), 1);
    await announcer.publish('epoch', signed);
    await waitFor(() => received.length === 1, 10_000, 'the announcement');
    expect(received[0].payload).toMatchObject({ epoch: 3, fileHash: FILE_HASH, size: FILE.byteLength });

    // The same message again (a replay), and one signed by a wallet the agent does not follow: ignored.
    await announcer.publish('epoch', signed).catch(() => 0); // gossipsub may drop its own duplicate
    await announcer.publish(
      'epoch',
      await announcement(OTHER_PROVIDER_WALLET, coordinator.peerId.toString(), 2),
    );
    await announcer.publish(
      'epoch',
      await announcement(COORDINATOR_WALLET, coordinator.peerId.toString(), 3),
    );
    await waitFor(() => received.length === 2, 10_000, 'the next announcement');
    await waitFor(
      () => metrics.get(EPOCHS_TOPIC, 'IGNORE', 'UNTRUSTED_ANNOUNCER') === 1,
      5_000,
      'the stranger ignored',
    );
    expect(received.map((r) => r.payload.seq)).toEqual([1, 3]);

    // The agent fetches by hash from the announcer, keeps the bytes, and serves them on.
    const bytes = await fetchEpochFile(agent, coordinator.peerId, FILE_HASH, {
      hash,
      maxBytes: FILE.byteLength,
    });
    expect(Buffer.from(bytes).equals(Buffer.from(FILE))).toBe(true);
    held.set(FILE_HASH, bytes);
    await coordinator.stop(); // the coordinator is gone
    const fromAgent = await fetchEpochFileFromAny(
      peer,
      [`/ip4/127.0.0.1/tcp/1/p2p/${coordinator.peerId.toString()}`, agent.getMultiaddrs()[0].toString()],
      FILE_HASH,
      { hash, timeoutMs: 10_000 },
    );
    expect(fromAgent.peer).toBe(agent.getMultiaddrs()[0].toString());
    expect(hash(fromAgent.bytes)).toBe(FILE_HASH);
  });

  it('refuses bytes that do not hash to the file hash, files over the cap, and files nobody holds', async () => {
    const [liar, agent] = await startNodes(2);
    nodes = [liar, agent];
    const forged = new TextEncoder().encode(
      new TextDecoder().decode(FILE).replace('"amount":"7"', '"amount":"7000"'),
    );
    await handleEpochFileRequests(liar, {
      getFile: async (fileHash) => (fileHash === FILE_HASH ? forged : undefined),
    });
    await connect(agent, liar);
    const failure = (p: Promise<unknown>): Promise<string> =>
      p.then(
        () => 'no error',
        (err: unknown) => (err instanceof EpochFileError ? err.code : String(err)),
      );
    expect(await failure(fetchEpochFile(agent, liar.peerId, FILE_HASH, { hash }))).toBe('HASH_MISMATCH');
    expect(await failure(fetchEpochFile(agent, liar.peerId, FILE_HASH, { hash, maxBytes: 100 }))).toBe(
      'TOO_LARGE',
    );
    expect(await failure(fetchEpochFile(agent, liar.peerId, `0x${'00'.repeat(32)}`, { hash }))).toBe(
      'NOT_FOUND',
    );
    expect(await failure(fetchEpochFile(agent, liar.peerId, 'nope', { hash }))).toBe('BAD_FRAME');
  });
});
