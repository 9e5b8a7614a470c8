// gpumesh spending-cap: a developer signs an EIP-712 SpendingCap(account, cap) for the JobEscrow —
// the most that may ever be debited from its deposit — and submits it on chain (`--submit`,
// JobEscrow.authorize), gives it to a coordinator (`--coordinator`, PUT /v1/account/spending-cap;
// its settler submits it before it debits), or just prints the signature. The private key comes from
// an environment variable (`--key-env`), never from a flag, and is never printed.
import { parseArgs } from 'node:util';

import { JsonRpcProvider, Wallet, getAddress, isAddress } from 'ethers';

import { MAX_SPENDING_CAP, attachJobEscrow, signSpendingCap, spendingCapDomain } from '@gpumesh/rewards';

import { consoleIo, type CliIo } from './io.js';

export const SPENDING_CAP_USAGE = [
  'usage: gpumesh spending-cap --cap <base units> --key-env <NAME>',
  '         [--rpc <url> --escrow <addr> [--chain-id <id>]] [--submit]',
  '         [--coordinator <url> --api-key-env <NAME>]',
  '  Signs SpendingCap(account, cap) (EIP-712, domain: the JobEscrow at --escrow on the chain of --rpc,',
  '  or --chain-id) with the key in the environment variable NAME; caps only rise.',
  '  --submit        send JobEscrow.authorize(account, cap, signature) from that key (pays gas).',
  '  --coordinator   PUT it to the coordinator with the API key in --api-key-env; without --escrow,',
  '                  the domain is the one GET /v1/account shows.',
  '  Prints { account, cap, signature, domain } as JSON.',
].join('\n');

class UsageError extends Error {}

function privateKey(env: NodeJS.ProcessEnv, name: string): Wallet {
  const key = env[name];
  if (!key) throw new UsageError(`${name} is not set (the key comes from the environment only)`);
  try {
    return new Wallet(key.startsWith('0x') ? key : `0x${key}`);
  } catch {
    throw new UsageError(`${name} is not a valid private key (32 bytes of hex)`); // never echo the key
  }
}

interface AccountDomain {
  spendingCap: { typedData: { domain: { chainId: number; verifyingContract: string } } } | null;
}

async function coordinatorDomain(url: string, apiKey: string): Promise<{ chainId: number; escrow: string }> {
  const res = await fetch(`${url}/v1/account`, { headers: { authorization: `Bearer ${apiKey}` } });
  if (!res.ok) throw new Error(`GET ${url}/v1/account: ${res.status} ${await res.text()}`);
  const body = (await res.json()) as AccountDomain;
  if (!body.spendingCap) throw new Error(`${url} settles on no chain: it takes no spending cap`);
  const { chainId, verifyingContract } = body.spendingCap.typedData.domain;
  return { chainId, escrow: verifyingContract };
}

/** Runs `gpumesh spending-cap` on `argv`; returns the exit code. */
export async function runSpendingCapCli(
  argv: readonly string[],
  io: CliIo = consoleIo,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let values: {
    cap?: string;
    'key-env'?: string;
    rpc?: string;
    escrow?: string;
    'chain-id'?: string;
    submit?: boolean;
    coordinator?: string;
    'api-key-env'?: string;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        cap: { type: 'string' },
        'key-env': { type: 'string' },
        rpc: { type: 'string' },
        escrow: { type: 'string' },
        'chain-id': { type: 'string' },
        submit: { type: 'boolean' },
        coordinator: { type: 'string' },
        'api-key-env': { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
  } catch (err) {
    io.err(`gpumesh spending-cap: ${(err as Error).message}\n${SPENDING_CAP_USAGE}`);
    return 2;
  }
  if (values.help) {
    io.out(SPENDING_CAP_USAGE);
    return 0;
  }
  let cap: bigint;
  let wallet: Wallet;
  let apiKey: string | null = null;
  try {
    if (
      values.cap === undefined ||
      !/^(0|[1-9][0-9]*)$/.test(values.cap) ||
      BigInt(values.cap) > MAX_SPENDING_CAP
    ) {
      throw new UsageError('--cap: expected base units (a whole number up to 2^256-1)');
    }
    cap = BigInt(values.cap);
    if (!values['key-env']) throw new UsageError('--key-env is required (the variable holding your key)');
    wallet = privateKey(env, values['key-env']);
    if (values.escrow !== undefined && !isAddress(values.escrow)) {
      throw new UsageError(`--escrow: not an address: ${values.escrow}`);
    }
    if (values.submit && (!values.rpc || !values.escrow))
      throw new UsageError('--submit needs --rpc and --escrow');
    if (values.coordinator) {
      new URL(values.coordinator);
      const name = values['api-key-env'];
      if (!name || !env[name])
        throw new UsageError('--coordinator needs --api-key-env naming a set variable');
      apiKey = env[name];
    } else if (!values.escrow) {
      throw new UsageError('--escrow (with --rpc or --chain-id) or --coordinator is required');
    }
    if (values.escrow && !values.rpc && values['chain-id'] === undefined && !values.coordinator) {
      throw new UsageError('--escrow needs --rpc or --chain-id');
    }
  } catch (err) {
    if (!(err instanceof UsageError) && !(err instanceof TypeError)) throw err;
    io.err(`gpumesh spending-cap: ${err.message}\n${SPENDING_CAP_USAGE}`);
    return 2;
  }

  const coordinator = values.coordinator?.replace(/\/+$/, '');
  const provider = values.rpc ? new JsonRpcProvider(values.rpc) : null;
  try {
    let chainId: number;
    let escrow: string;
    if (values.escrow) {
      escrow = getAddress(values.escrow);
      chainId =
        values['chain-id'] !== undefined
          ? Number(values['chain-id'])
          : provider
            ? Number((await provider.getNetwork()).chainId)
            : (await coordinatorDomain(coordinator!, apiKey!)).chainId;
    } else {
      ({ chainId, escrow } = await coordinatorDomain(coordinator!, apiKey!));
    }
    const domain = spendingCapDomain(chainId, escrow);
    const signed = await signSpendingCap(wallet, domain, cap);
    const result: Record<string, unknown> = {
      account: signed.account,
      cap: cap.toString(),
      signature: signed.signature,
      domain,
    };
    if (values.submit && provider) {
      const contract = attachJobEscrow(escrow, wallet.connect(provider));
      const current = await contract.spendingCapOf(signed.account);
      if (current >= cap) {
        result.submitted = { skipped: `the escrow already records a cap of ${current}` };
      } else {
        const receipt = await (await contract.authorize(signed.account, cap, signed.signature)).wait();
        result.submitted = { txHash: receipt?.hash ?? null };
      }
    }
    if (coordinator && apiKey) {
      const res = await fetch(`${coordinator}/v1/account/spending-cap`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ cap: cap.toString(), signature: signed.signature }),
      });
      const text = await res.text();
      if (!res.ok) {
        io.err(`gpumesh spending-cap: the coordinator refused it: ${res.status} ${text}`);
        io.out(JSON.stringify(result, null, 2));
        return 1;
      }
      result.coordinator = JSON.parse(text) as unknown;
    }
    io.out(JSON.stringify(result, null, 2));
    return 0;
  } catch (err) {
    io.err(`gpumesh spending-cap: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  } finally {
    provider?.destroy();
  }
}
