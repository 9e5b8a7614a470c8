// `gpumesh-agent earnings`: per epoch, what the chain's epoch files pay this agent, checked against
// its own journal (the provider mode of `gpumesh watch`). Each file is audited against the root and
// file hash on chain first; then every receipt of this agent's leaf is compared with the net the
// journal recorded when the agent accepted the job, and the claimed amount is read from the chain.
// Read-only: it needs no passphrase. Exit code 3 when a file pays a job short or fails its audit.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import {
  attachRewardsDistributor,
  auditEpoch,
  formatTokenAmount,
  parseEpochFile,
  reconcileProvider,
  type EpochFile,
  type JournalPayment,
  type ProviderReconciliation,
} from '@gpumesh/rewards';
import { agentPaths } from '../agent-config.js';
import { readJournalFile } from '../daemon/journal.js';
import { readKeystore } from '../keystore.js';
import { connectChain, getJson, type ChainOptions } from './chain-commands.js';
import { CliError, type Output } from './output.js';

export interface EarningsOptions extends ChainOptions {
  /** A directory of kept epoch files (`epoch-<n>.json`, as `gpumesh watch --save-dir` writes them). */
  files?: string;
  /** First epoch to check (default 1). */
  from?: string;
}

/** Exit code when a posted file pays this agent less than it accepted, or fails its audit. */
export const EARNINGS_PROBLEM_EXIT = 3;

interface EpochLine {
  epoch: number;
  status: 'ok' | 'short' | 'unaudited' | 'missing';
  paid: string;
  cumulative: string;
  receipts: number;
  short: number;
  unknown: number;
  why?: string;
}

export async function earningsCommand(opts: EarningsOptions, out: Output): Promise<number> {
  const paths = agentPaths(opts.dataDir);
  const identity = await readIdentity(paths.keystore);
  const from = opts.from === undefined ? 1 : Number(opts.from);
  if (!Number.isSafeInteger(from) || from < 1)
    throw new CliError(`--from must be an epoch ≥ 1, got "${opts.from}"`);
  const chain = await connectChain(opts, opts.files !== undefined && opts.coordinator === undefined);
  try {
    const distributor = attachRewardsDistributor(chain.info.distributor, chain.provider);
    const domain = { chainId: chain.info.chainId, distributor: chain.info.distributor };
    const last = Number(await distributor.lastEpoch());
    const files: EpochFile[] = [];
    const lines = new Map<number, EpochLine>();
    let previous: EpochFile | undefined;
    for (let epoch = from; epoch <= last; epoch++) {
      const [root, fileHash] = await distributor.epochRoot(epoch);
      const text = await epochFileText(opts, chain.coordinatorUrl, epoch);
      const empty = { epoch, paid: '0', cumulative: '0', receipts: 0, short: 0, unknown: 0 };
      if (text === null) {
        lines.set(epoch, { ...empty, status: 'missing', why: 'no file: neither kept nor served' });
        previous = undefined;
        continue;
      }
      const report = auditEpoch(text, root, fileHash, { domain, previous });
      if (!report.ok || report.epoch !== epoch) {
        const first = report.problems[0];
        lines.set(epoch, {
          ...empty,
          status: 'unaudited',
          why: first ? `${first.code}: ${first.message}` : `the file is of epoch ${report.epoch}`,
        });
        previous = undefined;
        continue;
      }
      const file = parseEpochFile(text);
      files.push(file);
      previous = file;
    }
    const journal = await journalPayments(paths.journal);
    const result = reconcileProvider(files, identity, journal);
    for (const e of result.epochs) {
      const short = e.receipts.filter((r) => r.match === 'short').length;
      lines.set(e.epoch, {
        epoch: e.epoch,
        status: short > 0 ? 'short' : 'ok',
        paid: e.paid.toString(),
        cumulative: e.cumulativeAmount.toString(),
        receipts: e.receipts.length,
        short,
        unknown: e.receipts.filter((r) => r.match === 'unknown').length,
      });
    }
    const index = [...result.epochs].reverse().find((e) => e.index !== null)?.index ?? null;
    const claimed = index === null ? 0n : await distributor.claimedAmount(index);
    const funded = Number(await distributor.fundedEpoch());
    const epochs = [...lines.values()].sort((a, b) => a.epoch - b.epoch);
    const problem = epochs.some((l) => l.status === 'short' || l.status === 'unaudited');
    print(out, { identity, epochs, result, claimed, funded, last });
    return problem ? EARNINGS_PROBLEM_EXIT : 0;
  } finally {
    chain.provider.destroy();
  }
}

async function readIdentity(path: string): Promise<{ account: string; peerId: string }> {
  const file = (await readKeystore(path)) as { address?: unknown; peerId?: unknown };
  if (typeof file.address !== 'string' || typeof file.peerId !== 'string') {
    throw new CliError(`${path}: the keystore names no address or peer id`);
  }
  return { account: file.address, peerId: file.peerId };
}

async function journalPayments(path: string): Promise<JournalPayment[]> {
  const { entries } = await readJournalFile(path);
  return entries.map((e) => ({ jobId: e.jobId, net: e.net === undefined ? null : BigInt(e.net) }));
}

/** The file of `epoch`: kept in --files, else served by the coordinator; null when neither has it. */
async function epochFileText(
  opts: EarningsOptions,
  coordinatorUrl: string,
  epoch: number,
): Promise<string | null> {
  if (opts.files !== undefined) {
    try {
      return await readFile(join(opts.files, `epoch-${epoch}.json`), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      if (opts.coordinator === undefined) return null;
    }
  }
  const res = await getJson<unknown>(coordinatorUrl, `/v1/rewards/epochs/${epoch}/file`);
  return res.ok ? JSON.stringify(res.body) : null;
}

function print(
  out: Output,
  r: {
    identity: { account: string; peerId: string };
    epochs: EpochLine[];
    result: ProviderReconciliation;
    claimed: bigint;
    funded: number;
    last: number;
  },
): void {
  const { result } = r;
  const latest = [...result.epochs].reverse().find((e) => e.index !== null);
  const claimable = latest && latest.epoch <= r.funded ? latest.cumulativeAmount - r.claimed : 0n;
  out.result(
    {
      account: r.identity.account,
      peerId: r.identity.peerId,
      lastEpoch: r.last,
      fundedEpoch: r.funded,
      epochs: r.epochs,
      claimed: r.claimed.toString(),
      claimableNow: (claimable > 0n ? claimable : 0n).toString(),
      owedShort: result.owedShort.toString(),
      counts: result.counts,
      unpaid: result.unpaid.map((u) => ({ jobId: u.jobId, net: u.net?.toString() ?? null })),
    },
    () => {
      const rows = r.epochs.map((l) => {
        const what =
          l.status === 'ok' || l.status === 'short'
            ? `${formatTokenAmount(BigInt(l.paid))} in ${l.receipts} receipt(s), cumulative ${formatTokenAmount(BigInt(l.cumulative))}${l.short ? `, ${l.short} paid SHORT` : ''}${l.unknown ? `, ${l.unknown} not in the journal` : ''}`
            : (l.why ?? '');
        return `  epoch ${String(l.epoch).padStart(4)}  ${l.status.padEnd(9)} ${what}`;
      });
      return [
        `earnings of ${r.identity.account} (peer ${r.identity.peerId}), epochs on chain: ${r.last}, funded: ${r.funded}`,
        ...(rows.length > 0 ? rows : ['  no epoch posted yet']),
        `  journal      ${result.counts.matched} job(s) paid exactly as signed, ${result.counts.short} short (owed ${formatTokenAmount(result.owedShort)}), ${result.unpaid.length} not in any posted epoch yet`,
        `  claimed      ${formatTokenAmount(r.claimed)}; claimable now ${formatTokenAmount(claimable > 0n ? claimable : 0n)}`,
      ].join('\n');
    },
  );
}
