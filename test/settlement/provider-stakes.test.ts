// ProviderStakesService against a real anvil and ProviderStaking: a tracked address is read at once,
// a Staked event re-reads it without waiting for the timer, and when the chain goes away the last
// known stake is kept and the outage is logged once.
import type { Logger } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ONE_TOKEN, attachComputeToken, stakeTokens, type DeployedAddresses } from '@gpumesh/rewards';
import { loadConfig } from '../../apps/coordinator/src/config/config.js';
import {
  ProviderStakesService,
  type ProviderStake,
} from '../../apps/coordinator/src/providers/provider-stakes.service.js';
import { deployForSettlement, startTestChain, waitFor, type TestChain } from './support.js';

const OPERATOR = 3;

/** A logger that records what was said at warn and info. */
function recordingLogger(): { logger: Logger; warns: string[]; infos: string[] } {
  const warns: string[] = [];
  const infos: string[] = [];
  const logger = {
    warn: (_ctx: unknown, msg: string) => warns.push(msg),
    info: (_ctx: unknown, msg: string) => infos.push(msg),
  } as unknown as Logger;
  return { logger, warns, infos };
}

describe('ProviderStakesService (real anvil)', () => {
  let chain: TestChain;
  let addresses: DeployedAddresses;
  let stopped = false;

  beforeAll(async () => {
    chain = await startTestChain(); // automine
    addresses = await deployForSettlement(chain, 9, 3600);
  }, 60_000);

  afterAll(async () => {
    if (!stopped) await chain?.stop();
  });

  it('reads at once, re-reads on the Staked event, and keeps the last value through an outage', async () => {
    const config = loadConfig({ STAKE_REFRESH_SECONDS: '60' }); // the timer never fires in this test
    const { logger, warns, infos } = recordingLogger();
    const service = new ProviderStakesService(
      config,
      {
        rpcUrl: chain.anvil.rpcUrl,
        chainId: chain.anvil.chainId,
        contracts: { ...addresses },
        settlerKey: '0x',
        slasherKey: '0x',
        publicRpcUrl: null,
        dev: false,
      },
      logger,
    );
    const changes: [string, ProviderStake][] = [];
    service.onChange((address, stake) => changes.push([address, stake]));
    expect(service.gated).toBe(true);
    service.onApplicationBootstrap();
    expect(infos).toContain('placement is stake-gated');
    try {
      const address = chain.anvil.accounts[OPERATOR].address;
      service.track(address);
      const first = await waitFor('the first read', async () => service.stakeOf(address));
      expect(first.bonded).toBe(0n);
      expect(changes.map(([a]) => a)).toEqual([address.toLowerCase()]);

      const token = attachComputeToken(addresses.token, chain.wallets[0]);
      await (await token.transfer(address, 25n * ONE_TOKEN)).wait();
      await stakeTokens({
        staking: addresses.staking,
        signer: chain.wallets[OPERATOR],
        amount: 25n * ONE_TOKEN,
      });
      // Far sooner than STAKE_REFRESH_SECONDS: the Staked event names the address.
      const after = await waitFor(
        'the Staked event to be seen',
        async () =>
          service.stakeOf(address)?.bonded === 25n * ONE_TOKEN ? service.stakeOf(address) : undefined,
        10_000,
      );
      expect(after.frozen).toBe(0n);
      expect(changes).toHaveLength(2);

      // The chain goes away: reads fail, the last known stake stays, the outage is logged once.
      await chain.stop();
      stopped = true;
      for (let i = 0; i < 3; i++) await service.refresh(address);
      expect(service.stakeOf(address)?.bonded).toBe(25n * ONE_TOKEN);
      expect(warns.filter((m) => m.startsWith('cannot read provider stakes'))).toHaveLength(1);
      expect(changes).toHaveLength(2);
    } finally {
      service.onApplicationShutdown();
    }
  }, 60_000);

  it('is off without a staking contract, and the worker says so once at boot', () => {
    const { logger, warns } = recordingLogger();
    const service = new ProviderStakesService(loadConfig({}), null, logger);
    expect(service.gated).toBe(false);
    service.onApplicationBootstrap();
    service.track('0x0000000000000000000000000000000000000001');
    expect(service.stakeOf('0x0000000000000000000000000000000000000001')).toBeUndefined();
    expect(warns).toEqual(['placement is not stake-gated: no ProviderStaking configured']);
    service.onApplicationShutdown();
  });
});
