// `npm start` on the local dev chain: the local agents' wallets get gas and tokens from the dev
// faucet and stake with `gpumesh-agent stake` (stake gates placement, and a slash can take it); once
// the coordinator sees their stakes, a small job gives the first epoch earnings, and once that epoch is final `gpumesh-agent claim` pays an agent, so a
// newcomer sees a payout claimed within a minute. Dev chain only; every step is the real one.
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { JsonRpcProvider, parseEther } from 'ethers';
import { encodeTensor } from '@gpumesh/protocol';
import {
  ONE_TOKEN,
  fundFromDevFaucet,
  attachProviderStaking,
  attachRewardsDistributor,
  formatTokenAmount,
  readStake,
  rpcProvider,
} from '@gpumesh/rewards';

/** What each local agent's wallet gets from the faucet, and stakes of it. */
const AGENT_GAS = parseEther('10');
const AGENT_TOKENS = 1_000n * ONE_TOKEN;
export const DEV_AGENT_STAKE = '100';
/** How long the demo waits for the first claimable epoch before giving up quietly. */
const PAYOUT_WAIT_MS = 180_000;
/** How long the first dev job waits for the coordinator to see the agents' stakes. */
const STAKE_SEEN_WAIT_MS = 60_000;

export interface DevAgentWallet {
  index: number;
  address: string;
  dir: string;
}

interface ChainInfo {
  chainId: number;
  rpcUrl: string | null;
  dev: boolean;
  token: string | null;
  distributor: string;
  staking: string | null;
}

export type RunAgentCli = (args: string[]) => Promise<string>;

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function short(address: string): string {
  return `${address.slice(0, 6)}…${address.slice(-4)}`;
}

async function json<T>(url: string, init?: RequestInit): Promise<{ status: number; body: T }> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
}

/** How many times the demo tries a request that timed out or could not connect. */
const REQUEST_TRIES = 3;

/** `call` again (after a second) when it threw, at most REQUEST_TRIES times in all. */
async function retried<T>(call: () => Promise<T>, signal: AbortSignal): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (attempt >= REQUEST_TRIES || signal.aborted) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/** The last JSON document a `--json` command printed. */
function lastJson<T>(output: string): T {
  const start = output.lastIndexOf('\n{');
  return JSON.parse(output.slice(start >= 0 ? start + 1 : output.indexOf('{'))) as T;
}

/**
 * Runs the dev payout demo in the background; resolves when it is done, failed, or stopped.
 * Does nothing unless the coordinator settles on its local dev chain.
 */
export async function runDevPayoutDemo(options: {
  coordinatorUrl: string;
  dataDir: string;
  agents: DevAgentWallet[];
  runCli: (agent: DevAgentWallet, args: string[]) => Promise<string>;
  signal: AbortSignal;
}): Promise<void> {
  const { coordinatorUrl, agents, signal } = options;
  const chain = await json<ChainInfo>(`${coordinatorUrl}/v1/rewards/chain`).catch(() => null);
  if (!chain || chain.status !== 200 || !chain.body.dev || !chain.body.rpcUrl || !chain.body.token) return;
  const info = chain.body;

  // A restart on the same data dir finds the dev chain as it was: agents that staked keep their stake.
  const provider = rpcProvider(info.rpcUrl!, info.chainId);
  let fresh: DevAgentWallet[] = agents;
  try {
    if (info.staking) {
      const staking = attachProviderStaking(info.staking, provider);
      const want = BigInt(DEV_AGENT_STAKE) * ONE_TOKEN;
      const staked = await Promise.all(
        agents.map(async (a) => (await readStake(staking, a.address)).bonded >= want),
      );
      fresh = agents.filter((_, i) => !staked[i]);
    }
    // 1. gas and tokens from the faucet (anvil account 8; the settler/slasher key stays untouched)
    await fundFromDevFaucet(
      provider,
      info.token!,
      fresh.map((agent) => ({ to: agent.address, wei: AGENT_GAS, tokens: AGENT_TOKENS })),
    );
  } finally {
    provider.destroy();
  }
  if (signal.aborted) return;

  // 2. each agent stakes with its own CLI
  if (info.staking) {
    await Promise.all(
      fresh.map(async (agent) => {
        const out = lastJson<{ staked: string; txHash: string }>(
          await options.runCli(agent, ['stake', DEV_AGENT_STAKE, '--json']),
        );
        say(
          `  stake      agent ${agent.index} ${short(agent.address)} staked ${formatTokenAmount(BigInt(out.staked))} GPUC (tx ${out.txHash})`,
        );
      }),
    );
  }
  if (signal.aborted) return;
  if (info.staking) await stakesSeen(coordinatorUrl, agents, signal);
  if (signal.aborted) return;

  // 3. a small job, so the first epoch has earnings to pay
  const keys = JSON.parse(await readFile(join(options.dataDir, 'dev-keys.json'), 'utf8')) as {
    developerKey: string;
  };
  const n = 256;
  const a = Float32Array.from({ length: n * n }, (_, i) => ((i % 7) - 3) / 4);
  const b = Float32Array.from({ length: n * n }, (_, i) => ((i % 5) - 2) / 3);
  const request: RequestInit = {
    method: 'POST',
    headers: {
      authorization: `Bearer ${keys.developerKey}`,
      'content-type': 'application/json',
      // One key for every try: a retry after a timeout never submits the job twice.
      'idempotency-key': `dev-first-payout-${randomUUID()}`,
    },
    body: JSON.stringify({
      version: 1,
      kind: 'matmul',
      inputs: [encodeTensor('a', 'float32', [n, n], a), encodeTensor('b', 'float32', [n, n], b)],
      maxPricePerUnit: '10',
      deadlineSeconds: 120,
    }),
  };
  const job = await retried(() => json<{ id: string }>(`${coordinatorUrl}/v1/jobs`, request), signal);
  if (job.status !== 200 && job.status !== 201) {
    throw new Error(`the first dev job was refused (${job.status})`);
  }
  say(`  dev job    ${job.body.id} (a ${n}×${n} matmul) so the first epoch has earnings to pay out`);

  // 4. wait for a claimable proof, then claim with the agent's CLI
  const until = Date.now() + PAYOUT_WAIT_MS;
  while (!signal.aborted && Date.now() < until) {
    for (const agent of agents) {
      const proof = await json<{ index: number; cumulativeAmount: string }>(
        `${coordinatorUrl}/v1/rewards/proof/${agent.address}`,
      ).catch(() => null);
      if (proof?.status !== 200) continue;
      // After a restart the newest claimable epoch may add nothing to what the agent claimed before.
      if (!(await claimsSomething(info, proof.body))) continue;
      const out = lastJson<{ paid: string; txHash: string; epoch: number }>(
        await options.runCli(agent, ['claim', '--json']),
      );
      say(
        `payout claimed: agent-${agent.index} ${agent.address} received ${formatTokenAmount(BigInt(out.paid))} GPUC ` +
          `(${out.paid} base units, epoch ${out.epoch}, tx ${out.txHash})`,
      );
      return;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** Whether a proof pays more than its leaf's index has claimed on the distributor so far. */
async function claimsSomething(
  info: ChainInfo,
  ticket: { index: number; cumulativeAmount: string },
): Promise<boolean> {
  const provider = new JsonRpcProvider(info.rpcUrl!, info.chainId, { staticNetwork: true });
  try {
    const distributor = attachRewardsDistributor(info.distributor, provider);
    return (await distributor.claimedAmount(ticket.index)) < BigInt(ticket.cumulativeAmount);
  } finally {
    provider.destroy();
  }
}

/**
 * Waits until placement counts every agent's stake (GET /v1/providers shows it), so the first job
 * is placed at once instead of waiting for the next stake refresh.
 */
async function stakesSeen(
  coordinatorUrl: string,
  agents: DevAgentWallet[],
  signal: AbortSignal,
): Promise<void> {
  const want = BigInt(DEV_AGENT_STAKE) * ONE_TOKEN;
  const until = Date.now() + STAKE_SEEN_WAIT_MS;
  while (!signal.aborted && Date.now() < until) {
    const res = await json<{ operatorId: string; usableStake: string | null }[]>(
      `${coordinatorUrl}/v1/providers`,
    ).catch(() => null);
    const seen = (agent: DevAgentWallet): boolean =>
      res?.body.some(
        (p) =>
          p.operatorId === agent.address.toLowerCase() &&
          (p.usableStake === null || BigInt(p.usableStake) >= want),
      ) ?? false;
    if (res?.status === 200 && agents.every(seen)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
}
