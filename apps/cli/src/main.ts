#!/usr/bin/env node
// gpumesh: the operator's command line. `verify-evidence` checks an evidence bundle offline (exit 0
// when it proves a wrong result); `audit` recomputes an epoch's Merkle root from its epoch file and
// compares it with the chain (audit.ts on libs/rewards, exit 0 when everything matches). The contracts'
// deployment (deploy-contracts.ts) runs on its own: `npm run deploy:contracts`.
import { consoleIo, type CliIo } from './io.js';

export const MAIN_USAGE = `gpumesh — operator tools for the gpumesh marketplace

usage: gpumesh <command> [options]

commands:
  verify-evidence <file>   check an evidence bundle offline (exit 0: it proves a wrong result, 1: it does not)
  audit <epoch-file>       recompute an epoch's root from its epoch file and compare it with the chain

\`gpumesh <command> --help\` describes each command.`;

/** Runs `gpumesh` on `argv` (without node and the script) and returns the exit code. */
export async function runCli(argv: readonly string[], io: CliIo = consoleIo): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
      io.err(MAIN_USAGE);
      return 2;
    case '-h':
    case '--help':
    case 'help':
      io.out(MAIN_USAGE);
      return 0;
    case 'verify-evidence': {
      const { runVerifyEvidenceCli } = await import('./verify-evidence.js');
      return runVerifyEvidenceCli(rest, io);
    }
    case 'audit': {
      // Loaded on demand: it brings the rewards library, ethers and the contract bindings.
      const { runAuditCli } = await import('./audit.js');
      return runAuditCli(rest, io);
    }
    default:
      io.err(`gpumesh: unknown command "${command}"\n\n${MAIN_USAGE}`);
      return 2;
  }
}

runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`gpumesh: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
