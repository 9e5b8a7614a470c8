import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { computeAddress } from 'ethers';
import { ANVIL_DEV_KEYS } from '@gpumesh/rewards';
import { DEV_GUARDIAN_INDEX, type SettlementChain } from '../settlement/settlement-chain.js';

const cliMain = fileURLToPath(new URL('../../../cli/src/main.js', import.meta.url));

/**
 * `npm start` on its local dev chain: an independent `gpumesh watch` child process with the dev
 * chain's guardian key (anvil account 4; the settler is account 3), so every root the coordinator
 * posts is checked against its file and a wrong one vetoed, as an operator's watcher would. Its
 * findings are printed with a `watch` prefix. It exits with this process (GPUMESH_EXIT_WITH_PARENT).
 */
export function startDevWatcher(options: {
  coordinatorUrl: string;
  chain: SettlementChain;
  write?: (line: string) => void;
}): { guardian: string; stop: () => void } | null {
  if (!options.chain.dev || !existsSync(cliMain)) return null;
  const write = options.write ?? ((line: string) => process.stdout.write(`${line}\n`));
  const key = ANVIL_DEV_KEYS[DEV_GUARDIAN_INDEX];
  const child: ChildProcess = spawn(
    process.execPath,
    [
      cliMain,
      'watch',
      '--coordinator',
      options.coordinatorUrl,
      '--rpc',
      options.chain.rpcUrl,
      '--distributor',
      options.chain.contracts.distributor,
    ],
    {
      env: { ...process.env, GPUMESH_GUARDIAN_KEY: key, GPUMESH_EXIT_WITH_PARENT: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  for (const stream of [child.stdout, child.stderr]) {
    if (stream) createInterface({ input: stream }).on('line', (line) => write(`  watch      ${line}`));
  }
  child.on('error', (err) => write(`  watch      could not start: ${err.message}`));
  return {
    guardian: computeAddress(key),
    stop: () => {
      if (child.exitCode === null) child.kill('SIGTERM');
    },
  };
}
