#!/usr/bin/env node
// gpumesh: the operator's command line. `verify-evidence` checks an evidence bundle offline (exit 0
// when it proves a wrong result); `audit` recomputes an epoch's Merkle root from its epoch file and
// compares it with the chain (audit.ts on libs/rewards, exit 0 when everything matches); `watch`
// does that for every root posted, as it is posted, and vetoes a wrong one with a guardian key;
// `spending-cap` signs a developer's escrow spending cap (spending-cap.ts); `dev fund` funds a wallet
// on a coordinator's local dev chain (dev-fund.ts). The developer commands (developer/: login, jobs,
// tensors, account, deposit, withdraw) use a coordinator through @gpumesh/sdk. The
// contracts' deployment (deploy-contracts.ts) runs on its own: `npm run deploy:contracts`.
import { consoleIo, type CliIo } from './io.js';

export const MAIN_USAGE = `gpumesh — developer and operator tools for the gpumesh marketplace

usage: gpumesh <command> [options]

developer commands:
  login                    sign in with your wallet; stores an API key in ~/.config/gpumesh/credentials.json
  jobs submit <spec.json | --matmul a.npy b.npy>   submit a job (prints its id; --wait waits)
  jobs watch <id>          a job's events, live (resumes after a dropped connection)
  jobs result <id> [-o out.npy]                    its result as JSON, or an output as .npy
  jobs list | jobs cancel <id>
  tensors upload <file.npy> | get <ref> -o <file.npy> | list | rm <ref>
                           tensors stored once, used as job inputs by ref
  account                  balance, reserved, charged, spending cap and what remains under it
  deposit <tokens>         deposit into the escrow and raise your spending cap by as much (one step)
  withdraw <tokens>        request an unlock, then (after the escrow's delay) withdraw

operator commands:
  verify-evidence <file>   check an evidence bundle offline (exit 0: it proves a wrong result, 1: it does not)
  audit <epoch-file>       recompute an epoch's root from its epoch file and compare it with the chain
  watch                    check every epoch root on chain against its file; veto wrong ones as guardian
  spending-cap             sign your escrow spending cap (EIP-712); submit it on chain or to a coordinator
  dev fund <address>       local dev chain only: ETH for gas and escrow tokens from the dev faucet

Every command takes --help; developer commands take --json and find the coordinator in --coordinator,
$GPUMESH_COORDINATOR or the stored login (the API key: $GPUMESH_API_KEY or the stored login).
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
    case 'login': {
      const { runLoginCli } = await import('./developer/login.js');
      return runLoginCli(rest, io);
    }
    case 'jobs': {
      const { runJobsCli } = await import('./developer/jobs.js');
      return runJobsCli(rest, io);
    }
    case 'tensors': {
      const { runTensorsCli } = await import('./developer/tensors.js');
      return runTensorsCli(rest, io);
    }
    case 'account': {
      const { runAccountCli } = await import('./developer/funds.js');
      return runAccountCli(rest, io);
    }
    case 'deposit': {
      const { runDepositCli } = await import('./developer/funds.js');
      return runDepositCli(rest, io);
    }
    case 'withdraw': {
      const { runWithdrawCli } = await import('./developer/funds.js');
      return runWithdrawCli(rest, io);
    }
    case 'verify-evidence': {
      const { runVerifyEvidenceCli } = await import('./verify-evidence.js');
      return runVerifyEvidenceCli(rest, io);
    }
    case 'audit': {
      // Loaded on demand: it brings the rewards library, ethers and the contract bindings.
      const { runAuditCli } = await import('./audit.js');
      return runAuditCli(rest, io);
    }
    case 'spending-cap': {
      const { runSpendingCapCli } = await import('./spending-cap.js');
      return runSpendingCapCli(rest, io);
    }
    case 'dev': {
      const [sub, ...args] = rest;
      if (sub !== 'fund') {
        io.err(`gpumesh dev: expected "gpumesh dev fund <address>"${sub ? `, got "${sub}"` : ''}`);
        return 2;
      }
      const { runDevFundCli } = await import('./dev-fund.js');
      return runDevFundCli(args, io);
    }
    case 'watch': {
      const { runWatchCli } = await import('./watch.js');
      const stop = new AbortController();
      process.once('SIGINT', () => stop.abort());
      process.once('SIGTERM', () => stop.abort());
      // A watcher started by `npm start` (GPUMESH_EXIT_WITH_PARENT=1) stops with the coordinator,
      // even one killed without a chance to stop it.
      if (process.env.GPUMESH_EXIT_WITH_PARENT === '1') {
        const parent = process.ppid;
        setInterval(() => {
          if (process.ppid !== parent) stop.abort();
        }, 1_000).unref();
      }
      return runWatchCli(rest, io, stop.signal);
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
