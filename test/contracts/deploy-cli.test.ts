import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { ZeroHash, id } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  attachComputeToken,
  attachJobEscrow,
  attachProviderStaking,
  attachRewardsDistributor,
} from '@gpumesh/rewards';

import { runDeployCli, type ContractsFile } from '../../apps/cli/src/deploy-contracts.js';

import { startChain, type Chain } from './chain.js';

/** A production-like chain (not 31337), deployer = dev account 9, roles on accounts 1–5. */
describe('npm run deploy:contracts (runDeployCli) on anvil', () => {
  let chain: Chain;
  let dir: string;
  const DEPLOYER = 9;

  beforeAll(async () => {
    chain = await startChain({ chainId: 1337 });
    dir = await mkdtemp(join(tmpdir(), 'gpumesh-deploy-'));
  });

  afterAll(async () => {
    await chain?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  function run(args: readonly string[]): Promise<{ code: number; out: string; err: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const env = { DEPLOYER_KEY: chain.anvil.accounts[DEPLOYER].privateKey };
    return runDeployCli(args, { out: (l) => out.push(l), err: (l) => err.push(l) }, env).then((code) => ({
      code,
      out: out.join('\n'),
      err: err.join('\n'),
    }));
  }

  const roleArgs = (overrides: Record<string, string> = {}): string[] => {
    const roles: Record<string, string> = {
      admin: chain.addresses[1],
      settler: chain.addresses[2],
      guardian: chain.addresses[3],
      slasher: chain.addresses[4],
      minter: chain.addresses[5],
      ...overrides,
    };
    return Object.entries(roles).flatMap(([k, v]) => [`--${k}`, v]);
  };

  it('refuses two roles on one address, a short window off the dev chain and bad input, before sending anything', async () => {
    const out = join(dir, 'refused.json');
    const dup = await run([
      '--rpc',
      chain.anvil.rpcUrl,
      ...roleArgs({ guardian: chain.addresses[2] }),
      '--out',
      out,
    ]);
    expect(dup.code).toBe(1);
    expect(dup.err).toContain(`--settler and --guardian are the same address ${chain.addresses[2]}`);
    const short = await run([
      '--rpc',
      chain.anvil.rpcUrl,
      ...roleArgs(),
      '--challenge-window',
      '3599',
      '--out',
      out,
    ]);
    expect(short.code).toBe(1);
    expect(short.err).toContain('--challenge-window 3599 is under 3600 s');
    const badAddress = await run([
      '--rpc',
      chain.anvil.rpcUrl,
      ...roleArgs({ minter: '0x1234' }),
      '--out',
      out,
    ]);
    expect(badAddress.err).toContain('--minter: not an address: 0x1234');
    const badNumber = await run([
      '--rpc',
      chain.anvil.rpcUrl,
      ...roleArgs(),
      '--max-epoch',
      '1h',
      '--out',
      out,
    ]);
    expect(badNumber.err).toContain('--max-epoch: expected whole seconds, got 1h');
    const shortUnlock = await run([
      '--rpc',
      chain.anvil.rpcUrl,
      ...roleArgs(),
      '--unlock-delay',
      '3600',
      '--out',
      out,
    ]);
    expect(shortUnlock.err).toContain('--unlock-delay 3600 is shorter than');
    const noKey = await runDeployCli(
      ['--rpc', chain.anvil.rpcUrl, ...roleArgs(), '--out', out],
      { out: () => undefined, err: () => undefined },
      {},
    );
    expect(noKey).toBe(1);
    expect(await chain.provider.getTransactionCount(chain.addresses[DEPLOYER])).toBe(0);
  });

  it('deploys, puts every role where it says, keeps none for the deployer, and writes the contracts file', async () => {
    const out = join(dir, 'contracts.json');
    const result = await run([
      '--rpc',
      chain.anvil.rpcUrl,
      ...roleArgs(),
      '--challenge-window',
      '7200',
      '--cap',
      '5000000',
      '--out',
      out,
    ]);
    expect(result.err).toBe('');
    expect(result.code).toBe(0);
    expect(result.out).not.toContain(chain.anvil.accounts[DEPLOYER].privateKey.slice(2));
    const file = JSON.parse(await readFile(out, 'utf8')) as ContractsFile;
    expect(Object.keys(file).sort()).toEqual([
      'chainId',
      'deployBlock',
      'distributor',
      'escrow',
      'staking',
      'token',
    ]);
    expect(file.chainId).toBe(1337);
    expect(result.out).toContain(file.distributor);

    const [admin, settler, guardian, slasher, minter] = chain.addresses.slice(1, 6);
    const deployer = chain.addresses[DEPLOYER];
    const token = attachComputeToken(file.token, chain.provider);
    const distributor = attachRewardsDistributor(file.distributor, chain.provider);
    const escrow = attachJobEscrow(file.escrow, chain.provider);
    const staking = attachProviderStaking(file.staking, chain.provider);
    expect(await token.cap()).toBe(5_000_000n);
    expect(await token.hasRole(id('MINTER_ROLE'), minter)).toBe(true);
    expect(await distributor.hasRole(id('SETTLER_ROLE'), settler)).toBe(true);
    expect(await distributor.hasRole(id('GUARDIAN_ROLE'), guardian)).toBe(true);
    expect(await distributor.challengeWindow()).toBe(7_200n);
    // The escrow has no roles at all: debits need a batch committed with a final root.
    expect(escrow.interface.getFunction('hasRole')).toBeNull();
    expect(await escrow.distributor()).toBe(file.distributor);
    expect(await escrow.unlockDelay()).toBe(3_600n + 7_200n + 3_600n);
    expect(await staking.hasRole(id('SLASHER_ROLE'), slasher)).toBe(true);
    for (const c of [token, distributor]) {
      expect(await c.defaultAdmin()).toBe(admin);
      expect(await c.defaultAdminDelay()).toBe(172_800n);
    }
    expect(await staking.hasRole(ZeroHash, admin)).toBe(true);
    for (const c of [token, distributor, staking]) {
      for (const role of [
        ZeroHash,
        id('MINTER_ROLE'),
        id('SETTLER_ROLE'),
        id('GUARDIAN_ROLE'),
        id('SLASHER_ROLE'),
      ]) {
        expect(await c.hasRole(role, deployer)).toBe(false);
      }
    }
    // The file is never overwritten.
    const again = await run(['--rpc', chain.anvil.rpcUrl, ...roleArgs(), '--out', out]);
    expect(again.code).toBe(1);
    expect(again.err).toContain('already exists');
  });
});
