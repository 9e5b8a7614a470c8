// gpumesh audit <epoch-file> --rpc <url> --distributor <address> [--previous <epoch-file>] [--json]
// Recomputes the epoch's root from the file alone and compares it, and the file's hash, with what
// the RewardsDistributor holds for that epoch. Exit code 0 when everything matches, 1 otherwise.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

import { JsonRpcProvider } from 'ethers';

import {
  attachRewardsDistributor,
  auditEpoch,
  parseEpochFile,
  type AuditReport,
  type EpochFile,
} from '@gpumesh/rewards';

import { consoleIo, type CliIo } from './io.js';

export const AUDIT_USAGE =
  'usage: gpumesh audit <epoch-file> --rpc <url> --distributor <address> [--previous <epoch-file>] [--json]';

/** Runs the audit CLI on `argv` (without the command name) and returns the exit code. */
export async function runAuditCli(argv: readonly string[], io: CliIo = consoleIo): Promise<number> {
  let values: { rpc?: string; distributor?: string; previous?: string; json?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        rpc: { type: 'string' },
        distributor: { type: 'string' },
        previous: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean' },
      },
    }));
  } catch (err) {
    io.err(`${(err as Error).message}\n${AUDIT_USAGE}`);
    return 1;
  }
  if (values.help) {
    io.out(AUDIT_USAGE);
    return 0;
  }
  if (positionals.length !== 1 || !values.rpc || !values.distributor) {
    io.err(AUDIT_USAGE);
    return 1;
  }
  let report: AuditReport;
  const provider = new JsonRpcProvider(values.rpc, undefined, { staticNetwork: true });
  try {
    const text = await readFile(positionals[0], 'utf8');
    let previous: EpochFile | undefined;
    if (values.previous) previous = parseEpochFile(await readFile(values.previous, 'utf8'));
    let epoch: number;
    try {
      epoch = parseEpochFile(text).epoch;
    } catch {
      report = auditEpoch(text, '0x', '0x');
      return print(report, values.json ?? false, io);
    }
    const distributor = attachRewardsDistributor(values.distributor, provider);
    const [root, fileHash] = await distributor.epochRoot(epoch);
    const { chainId } = await provider.getNetwork();
    report = auditEpoch(text, root, fileHash, {
      previous,
      domain: { chainId: Number(chainId), distributor: values.distributor },
    });
  } catch (err) {
    io.err(`audit failed: ${(err as Error).message}`);
    return 1;
  } finally {
    provider.destroy();
  }
  return print(report, values.json ?? false, io);
}

function print(report: AuditReport, json: boolean, io: CliIo): number {
  if (json) {
    io.out(JSON.stringify(report, null, 2));
  } else if (report.ok) {
    io.out(`epoch ${report.epoch}: OK (${report.leafCount} leaves, root ${report.root})`);
  } else {
    io.out(`epoch ${report.epoch ?? '?'}: FAILED`);
    for (const p of report.problems) io.out(`  ${p.code}: ${p.message}`);
  }
  return report.ok ? 0 : 1;
}
