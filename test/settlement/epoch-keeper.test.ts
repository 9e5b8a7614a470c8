// The agent's epoch keeper against a real anvil and real libp2p peers: an announced epoch file is
// kept only when the chain holds its file hash and a peer serves bytes with that hash; a liar's bytes
// are passed over for an honest peer's, and a file hash the chain does not hold is never fetched.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { handleEpochFileRequests, type GpumeshNode } from '@gpumesh/p2p';
import { PROTOCOL_VERSION, signPayload, type EpochAnnouncement, type Signed } from '@gpumesh/protocol';
import { attachRewardsDistributor, keccak256Hex, type DeployedAddresses } from '@gpumesh/rewards';
import { Wallet, ZeroHash } from 'ethers';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EpochKeeper, type EpochKeepOutcome } from '../../apps/provider-agent/src/daemon/epoch-keeper.js';
import { EpochFileStore } from '../../apps/provider-agent/src/daemon/epoch-store.js';
import { connect, startNodes, stopNodes } from '../p2p/support.js';
import { deployForSettlement, startTestChain, type TestChain } from './support.js';

const SETTLER = 9;
const HOLDER = `0x${'1a'.repeat(20)}`;
const ANNOUNCER = new Wallet(`0x${'c7'.repeat(32)}`);
const FILE = new TextEncoder().encode(
  JSON.stringify({ epoch: 1, leaves: [{ account: HOLDER, amount: '40' }] }),
);
const FORGED = new TextEncoder().encode(
  JSON.stringify({ epoch: 1, leaves: [{ account: HOLDER, amount: '49' }] }),
);
const FILE_HASH = keccak256Hex(FILE);
const ROOT = `0x${'5e'.repeat(32)}`;

describe('the agent keeps an announced epoch file only when the chain and the bytes agree', () => {
  let chain: TestChain;
  let addresses: DeployedAddresses;
  let nodes: GpumeshNode[] = [];
  let dir: string;

  beforeAll(async () => {
    chain = await startTestChain();
    addresses = await deployForSettlement(chain, SETTLER, 60);
    const distributor = attachRewardsDistributor(addresses.distributor, chain.wallets[SETTLER]);
    await (await distributor.postRoot(1, ROOT, FILE_HASH, 40, ZeroHash)).wait();
    dir = await mkdtemp(join(tmpdir(), 'epoch-keeper-'));
  }, 60_000);

  afterAll(async () => {
    await stopNodes(nodes);
    await chain?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function announce(
    announcer: GpumeshNode,
    overrides: Partial<EpochAnnouncement> = {},
  ): Promise<Signed<EpochAnnouncement>> {
    const now = Date.now();
    return signPayload(
      'epoch',
      {
        version: PROTOCOL_VERSION,
        peerId: announcer.peerId.toString(),
        seq: now,
        issuedAt: now,
        expiresAt: now + 60_000,
        chainId: chain.anvil.chainId,
        distributor: addresses.distributor.toLowerCase(),
        epoch: 1,
        root: ROOT,
        fileHash: FILE_HASH,
        size: FILE.byteLength,
        ...overrides,
      },
      ANNOUNCER,
    );
  }

  it('checks the chain, passes over a liar, and keeps the honest bytes', async () => {
    const [agent, liar, honest] = await startNodes(3);
    nodes = [agent, liar, honest];
    await handleEpochFileRequests(liar, { getFile: async () => FORGED });
    await handleEpochFileRequests(honest, {
      getFile: async (fileHash) => (fileHash === FILE_HASH ? FILE : undefined),
    });
    await connect(agent, liar);
    await connect(agent, honest);
    const outcomes: EpochKeepOutcome[] = [];
    const store = await EpochFileStore.open(join(dir, 'with-rpc'), HOLDER);
    const keeper = new EpochKeeper({
      node: agent,
      store,
      logger: pino({ level: 'silent' }),
      chainRpcUrl: chain.anvil.rpcUrl,
      onOutcome: (o) => outcomes.push(o),
    });
    await keeper.start();
    try {
      // A file hash the chain does not hold for the epoch, and another chain: refused before any fetch.
      await keeper.onAnnouncement(
        await announce(liar, { fileHash: keccak256Hex(FORGED) }),
        liar.peerId.toString(),
      );
      await keeper.onAnnouncement(await announce(liar, { chainId: 1 }), liar.peerId.toString());
      expect(outcomes).toMatchObject([
        { kept: false, reason: expect.stringMatching(/the chain has file hash/) as unknown },
        { kept: false, reason: expect.stringMatching(/the RPC is chain/) as unknown },
      ]);
      expect(store.list()).toEqual([]);
      // The liar announces the right hash but serves forged bytes: the honest peer's copy is kept.
      await keeper.onAnnouncement(await announce(liar), liar.peerId.toString());
      expect(outcomes[2]).toEqual({
        kept: true,
        epoch: 1,
        fileHash: FILE_HASH,
        from: honest.peerId.toString(),
        checkedOnChain: true,
      });
      expect(store.list()).toMatchObject([{ epoch: 1, fileHash: FILE_HASH, concernsHolder: true }]);
    } finally {
      await keeper.stop();
    }

    // Without an RPC the announcement is the check: with only the liar to ask, nothing is kept.
    await honest.stop();
    const blind = await EpochFileStore.open(join(dir, 'without-rpc'), HOLDER);
    const alone = new EpochKeeper({
      node: agent,
      store: blind,
      logger: pino({ level: 'silent' }),
      onOutcome: (o) => outcomes.push(o),
    });
    await alone.onAnnouncement(await announce(liar), liar.peerId.toString());
    expect(outcomes[3]).toMatchObject({
      kept: false,
      reason: expect.stringMatching(/hashes to 0x/) as unknown,
    });
    expect(blind.list()).toEqual([]);
    await alone.stop();
  });
});
