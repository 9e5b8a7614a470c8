// gpumesh spending-cap (runSpendingCapCli) against anvil: signs with the key from the environment,
// submits on chain, prints the signature; refuses bad input without echoing the key.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { spendingCapDomain, spendingCapSigner } from '@gpumesh/rewards';

import { runSpendingCapCli } from '../../apps/cli/src/spending-cap.js';

import { deploySystem, startChain, type Chain, type System } from './chain.js';

describe('gpumesh spending-cap on anvil', () => {
  let chain: Chain;
  let sys: System;
  const DEV = 4;

  beforeAll(async () => {
    chain = await startChain();
    sys = await deploySystem(chain);
  });

  afterAll(async () => {
    await chain?.stop();
  });

  async function run(args: readonly string[]): Promise<{ code: number; out: string; err: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const env = { DEV_KEY: chain.anvil.accounts[DEV].privateKey };
    const code = await runSpendingCapCli(args, { out: (l) => out.push(l), err: (l) => err.push(l) }, env);
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  it('signs and submits a cap, then prints one without submitting', async () => {
    const base = ['--key-env', 'DEV_KEY', '--rpc', chain.anvil.rpcUrl, '--escrow', sys.addresses.escrow];
    const submitted = await run([...base, '--cap', '5000', '--submit']);
    expect(submitted.code, submitted.err).toBe(0);
    const result = JSON.parse(submitted.out) as {
      account: string;
      signature: string;
      submitted: { txHash: string };
    };
    expect(result.account).toBe(chain.addresses[DEV]);
    expect(result.submitted.txHash).toMatch(/^0x[0-9a-f]{64}$/);
    expect(await sys.escrow.spendingCapOf(chain.addresses[DEV])).toBe(5000n);

    const printed = await run([...base, '--cap', '9000']);
    expect(printed.code).toBe(0);
    const signed = JSON.parse(printed.out) as { signature: string };
    const domain = spendingCapDomain(chain.anvil.chainId, sys.addresses.escrow);
    expect(spendingCapSigner(domain, chain.addresses[DEV], 9000n, signed.signature)).toBe(
      chain.addresses[DEV],
    );
    expect(await sys.escrow.spendingCapOf(chain.addresses[DEV])).toBe(5000n); // not submitted
    // Anyone may submit the printed signature.
    await (await sys.escrow.authorize(chain.addresses[DEV], 9000n, signed.signature)).wait();
    expect(await sys.escrow.spendingCapOf(chain.addresses[DEV])).toBe(9000n);
  });

  it('refuses bad input with usage, never printing the key', async () => {
    const key = chain.anvil.accounts[DEV].privateKey;
    for (const args of [
      ['--cap', '-1', '--key-env', 'DEV_KEY', '--escrow', sys.addresses.escrow, '--chain-id', '1'],
      ['--cap', '10', '--escrow', sys.addresses.escrow, '--chain-id', '1'],
      ['--cap', '10', '--key-env', 'MISSING', '--escrow', sys.addresses.escrow, '--chain-id', '1'],
      ['--cap', '10', '--key-env', 'DEV_KEY'],
      ['--cap', '10', '--key-env', 'DEV_KEY', '--escrow', 'nope', '--chain-id', '1'],
      ['--cap', '10', '--key-env', 'DEV_KEY', '--escrow', sys.addresses.escrow, '--submit'],
    ]) {
      const res = await run(args);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.err).toMatch(/usage: gpumesh spending-cap/);
      expect(res.err + res.out).not.toContain(key.slice(2));
    }
  });
});
