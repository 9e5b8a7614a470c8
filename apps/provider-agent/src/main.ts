#!/usr/bin/env node
// gpumesh-agent: the provider agent's command line. `@gpumesh/p2p` comes first: it installs the polyfills
// libp2p needs on Node 20 before anything loads libp2p.
import '@gpumesh/p2p';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { defaultDataDir } from './agent-config.js';
import { benchmarkCommand, doctorCommand, initCommand, startCommand, statusCommand } from './cli/commands.js';
import { CliError, createOutput } from './cli/output.js';
import { agentVersion } from './version.js';

const COMMON = `  --data-dir <dir>  where the keystore, config, cache and journal live (default ~/.gpumesh-agent)
  --json            machine-readable output
  -h, --help        this help`;

/** The env variable `stake`/`unstake`/`claim` read the chain's RPC URL from (see cli/chain-commands.ts). */
const CHAIN_RPC_ENV = 'GPUMESH_CHAIN_RPC_URL';

const CHAIN = `  --coordinator <url>  the coordinator (default: the one in your config); it names the chain and contracts
  --rpc <url>          the chain's JSON-RPC URL (default: ${CHAIN_RPC_ENV}, else what the coordinator publishes)`;

const HELP: Record<string, string> = {
  main: `gpumesh-agent — rent out your GPU (or CPU) on the gpumesh marketplace

usage: gpumesh-agent <command> [options]
       gpumesh-agent --version

commands:
  init       create an encrypted keystore (wallet + libp2p key) and a config for a coordinator
  doctor     detect GPUs, pick the TensorFlow.js backend and prove it really runs
  benchmark  measure matmul GFLOP/s on the chosen backend (goes into your adverts)
  gpu-check  one-shot check of a GPU machine: GPUs, doctor for every backend, a checked 1024²–8192²
             matmul sweep on each, one job through a local coordinator; JSON and a short table
  start      run the provider daemon: advertise, take jobs, report signed receipts
  status     show the running agent's peers, jobs and earnings
  stake      bond tokens on ProviderStaking (what a slash for wrong results takes), or show the stake
  unstake    start unbonding stake, or withdraw it once the unbonding delay has passed
  claim      claim your verified earnings on chain with the coordinator's Merkle proof
  earnings   per epoch, what the posted epoch files pay you, checked against your own journal
  dev-fund   local dev chain only: get gas and tokens from the dev faucet (to try stake and claim)

\`gpumesh-agent <command> --help\` describes each command. The keystore passphrase is read from
GPUMESH_AGENT_PASSPHRASE or asked on the terminal.`,
  init: `usage: gpumesh-agent init --coordinator <url> [options]

  --coordinator <url>  the coordinator's REST URL (it tells the agent where to connect and whom to trust)
  --price <n>          base units per work unit (1 MFLOP) you charge (default 1)
  --region <name>      advertised region (optional)
  --slots <n>          concurrent jobs (default: CPU cores for cpu/wasm, one per GPU)
  --jobs-per-slot <n>  jobs accepted per slot, the rest waiting in its queue (default 4; 32 for a
                       stream of tiny jobs, whose offers then travel in batches; 1 for long jobs)
  --backend <name>     auto | tensorflow-gpu | webgpu | tensorflow | wasm | cpu (default auto)
  --tensor-cache <size>
                       disk kept for job inputs by ref under tensors/ in the data dir, so jobs on the
                       same tensors do not fetch them again (default 1GiB; e.g. 0, 512MiB, 20GiB)
  --artifact-cache <size>
                       disk kept for model artifacts (model.json + weights) under artifacts/ in the
                       data dir, least recently used out first (default 2GiB; e.g. 0, 512MiB, 20GiB)
  --force              replace an existing keystore (its identity and unclaimed earnings address are lost)
  --light-kdf          cheap key derivation, for throwaway test agents only
${COMMON}`,
  doctor: `usage: gpumesh-agent doctor [--backend <name>]

Detects NVIDIA GPUs (nvidia-smi, then systeminformation), resolves the backend in the order
tensorflow-gpu → webgpu → tensorflow → wasm → cpu, and runs a timed, checked matmul on it. Exit code 0 when the
backend is proven and uses the GPUs found; 1 otherwise — including GPUs present while jobs would run on
wasm or the CPU (a failed optional @tensorflow/tfjs-node-gpu install, missing CUDA libraries), with the
package, libraries and commands that fix it. --backend wasm|cpu says you mean to rent out the CPU.
  --backend <name>     only try this backend
${COMMON}`,
  benchmark: `usage: gpumesh-agent benchmark [--backend <name>]
       gpumesh-agent benchmark --sweep [--backend <name>] [--max-size <n> | --sizes <n,n,…>]

Sweeps matmul sizes on the backend and saves the best sustained GFLOP/s in the config.
With --sweep: gpu-check's sweep instead (1024² to 8192²: matmuls queued back to back on the device,
each size's product checked against a float64 reference with a random vector); nothing is saved.
  --backend <name>     the backend to measure (default: the config's, else wasm)
  --sweep              gpu-check's sweep
  --max-size <n>       --sweep: sizes up to n (below 1024: powers of two from 128)
  --sizes <n,n,…>      --sweep: these sizes
  --max-seconds <s>    --sweep: skip a size estimated to take longer (default 120)
${COMMON}`,
  'gpu-check': `usage: gpumesh-agent gpu-check [--max-size <n>] [--backends <b,b,…>] [--no-job] [options]

One command for a GPU machine (also scripts/gpu-check.sh in a checkout). It
  1. lists the GPUs with whichever of nvidia-smi, rocm-smi, system_profiler and lspci exist;
  2. runs \`doctor --backend <b> --json\` for every backend (tensorflow-gpu, webgpu, tensorflow, wasm,
     cpu), each in a process of its own;
  3. on each backend that works, \`benchmark --sweep\`: float32 matmuls of 1024² to 8192², queued back
     to back and synchronised once (GFLOP/s = 2n³ × iterations / time), each size's product checked
     against float64 (C·x against A·(B·x) for a random x, relative error ≤ 5e-5; TF32 fails it);
  4. runs one matmul job through a coordinator on the first backend that works (or --job-backend): a
     throwaway local one (the checkout's built coordinator, --dev on a temp data dir with one agent on
     that backend), or a running one with --coordinator <url> and a developer key in GPUMESH_API_KEY;
     its result is compared with a float64 reference.
Prints a short table, or one JSON document with --json (the table then goes to stderr). Exit code 0
when every working backend's sweep passed its checks and the job agreed with the reference.
  --max-size <n>       sweep sizes up to n (default 8192; below 1024: powers of two from 128)
  --sizes <n,n,…>      exactly these sweep sizes
  --max-seconds <s>    skip a size estimated to take longer than this on a backend (default 120)
  --backends <b,b,…>   only these backends (default all five)
  --no-job             skip the job through a coordinator
  --job-backend <name> the job's backend (default: the first that works, in the agent's order)
  --job-size <n>       the job's square matmul side (default 512)
  --coordinator <url>  send the job to this running coordinator (key in GPUMESH_API_KEY)
  --coordinator-main <path>
                       the coordinator to start (default: dist/apps/coordinator/src/main.js of the
                       checkout this agent was built in)
${COMMON}`,
  start: `usage: gpumesh-agent start [--log-level info] [--coordinator <url>] [--max-disconnected <s>]
                           [--tensor-cache <size>] [--artifact-cache <size>]

Runs the daemon until Ctrl-C: one executor per slot in worker threads, signed adverts on gossipsub,
job offers over libp2p streams, and a journal so a restarted agent never runs a reported attempt twice.
It only dials out (no listening port unless "listen" is set in the config) and redials its coordinator
forever with capped backoff, re-reading its addresses from /v1/network. One agent per data directory.
  --log-level <level>  fatal | error | warn | info | debug (default info)
  --max-disconnected <s>
                       exit with code 69 after this many seconds without any coordinator connection,
                       so a supervisor (systemd Restart=on-failure) restarts the agent; 0 = never
                       (default: maxDisconnectedSeconds in the config, 600)
  --coordinator <url>  the coordinator's REST URL when it moved (saved in the config; its offer
                       signer must still be the one trusted at init)
  --tensor-cache <size>
                       the tensor cache's size for this run (default: tensorCacheBytes in the
                       config, 1GiB); 0 = keep no tensor (the files kept are removed)
  --artifact-cache <size>
                       the model artifact cache's size for this run (default: artifactCacheBytes in
                       the config, 2GiB); 0 = keep no model (the files kept are removed)
${COMMON}`,
  status: `usage: gpumesh-agent status

Shows the running agent's peer id, backend, whether it is connected to its coordinator (and for how
long), its jobs, its tensor and model caches (hits, misses, bytes, evictions), and its net earnings
after the platform fee, per job id, as the coordinator's GET /v1/providers/<peer id>/earnings
reports them (held, waiting for an epoch, or in a closed epoch).
${COMMON}`,
  stake: `usage: gpumesh-agent stake [<amount>]

Bonds <amount> tokens (e.g. 100 or 2.5; 6 decimals) from your keystore wallet on the coordinator's
ProviderStaking contract: approves it, then stakes. Stake is what a provider caught returning wrong
results loses: a slash proposal freezes it at once (unbonding cannot dodge it) and, after an admin
review window, it compensates the developers whose jobs you ran, or is burnt. Without an amount it
shows your bonded, unbonding and frozen stake. The wallet needs the tokens and a little ETH for gas.
${CHAIN}
${COMMON}`,
  unstake: `usage: gpumesh-agent unstake <amount|all>
       gpumesh-agent unstake --withdraw

Moves <amount> tokens (or all) of your stake to unbonding; they stay slashable until the unbonding
delay ends. Then --withdraw returns them to your wallet, except what pending slash proposals froze.
  --withdraw           withdraw what finished unbonding and is not frozen
${CHAIN}
${COMMON}`,
  claim: `usage: gpumesh-agent claim [--distributor <address>] [--file <epoch-file> --rpc <url> --distributor <address>] [--peer <multiaddr>]

Claims on the RewardsDistributor everything your verified work earned up to the latest final epoch.
The coordinator says which epoch; its file (/v1/rewards/epochs/<n>/file) is checked against the root
and file hash on chain, and your leaf and proof are built from it here; a file the chain does not
commit to is refused. With --file, a kept epoch file is used and the coordinator is not contacted at
all (it may be gone): give --rpc and --distributor. When the coordinator does not answer, the chain
says which epoch is final and funded and what its file hashes to; the file is this agent's kept copy
(epochs/ in the data dir, kept by \`start\` from the coordinator's announcements) or is fetched by that
hash from a peer (epochPeers in the config, --peer); the RPC is --rpc or chainRpcUrl of the config,
the distributor --distributor or the one the kept files name. Exit code 0 when paid; 1 with the reason
otherwise (nothing claimable yet, challenge window not passed, already claimed, chain unreachable,
no ETH for gas, a file that does not match the chain).
${CHAIN}
  --distributor <addr> pin the RewardsDistributor (the coordinator's chain info must name it)
  --file <path>        claim from this epoch file without the coordinator
  --peer <multiaddr>   a peer (/…/p2p/<id>) to fetch the epoch file from when the coordinator is gone; repeatable
${COMMON}`,
  earnings: `usage: gpumesh-agent earnings [--from <epoch>] [--files <dir> --rpc <url> --distributor <address>]

For every epoch root on chain, audits its epoch file against the root and file hash (with continuity
from the epoch before), then compares each receipt of your leaf with the net your journal recorded
when you accepted the job: paid exactly, paid SHORT, or unknown to the journal. Lists the jobs no
posted epoch pays yet, what you have claimed and what you can claim now. Needs no passphrase.
Exit code 0 when every file checks out; 3 when a file pays a job short or fails its audit.
${CHAIN}
  --distributor <addr> pin the RewardsDistributor (the coordinator's chain info must name it)
  --files <dir>        kept epoch files (epoch-<n>.json, as gpumesh watch --save-dir keeps them);
                       with --rpc and --distributor the coordinator is not contacted
  --from <epoch>       first epoch to check (default 1)
${COMMON}`,
  'dev-fund': `usage: gpumesh-agent dev-fund [--eth 1] [--tokens 1000]

On a coordinator's local dev chain (\`npm start\`, /v1/rewards/chain says dev), sends your keystore wallet
ETH for gas and stake tokens from the dev faucet (anvil's public test account 8). On a real network it
refuses: buy gas on that chain and get tokens from the operator (docs/provider-guide.md).
  --eth <n>            ETH for gas (default 1)
  --tokens <n>         stake tokens (default 1000)
${CHAIN}
${COMMON}`,
};

const commonOptions = {
  'data-dir': { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsConfig['options'];

const commandOptions = {
  init: {
    ...commonOptions,
    coordinator: { type: 'string' },
    price: { type: 'string', default: '1' },
    region: { type: 'string' },
    slots: { type: 'string' },
    'jobs-per-slot': { type: 'string' },
    backend: { type: 'string' },
    'tensor-cache': { type: 'string' },
    'artifact-cache': { type: 'string' },
    force: { type: 'boolean', default: false },
    'light-kdf': { type: 'boolean', default: false },
  },
  doctor: { ...commonOptions, backend: { type: 'string' } },
  benchmark: {
    ...commonOptions,
    backend: { type: 'string' },
    sweep: { type: 'boolean', default: false },
    sizes: { type: 'string' },
    'max-size': { type: 'string' },
    'max-seconds': { type: 'string' },
  },
  'gpu-check': {
    ...commonOptions,
    sizes: { type: 'string' },
    'max-size': { type: 'string' },
    'max-seconds': { type: 'string' },
    backends: { type: 'string' },
    'no-job': { type: 'boolean', default: false },
    'job-backend': { type: 'string' },
    'job-size': { type: 'string' },
    coordinator: { type: 'string' },
    'coordinator-main': { type: 'string' },
  },
  start: {
    ...commonOptions,
    'log-level': { type: 'string', default: 'info' },
    coordinator: { type: 'string' },
    'max-disconnected': { type: 'string' },
    'tensor-cache': { type: 'string' },
    'artifact-cache': { type: 'string' },
  },
  status: { ...commonOptions },
  stake: { ...commonOptions, coordinator: { type: 'string' }, rpc: { type: 'string' } },
  unstake: {
    ...commonOptions,
    coordinator: { type: 'string' },
    rpc: { type: 'string' },
    withdraw: { type: 'boolean', default: false },
  },
  claim: {
    ...commonOptions,
    coordinator: { type: 'string' },
    rpc: { type: 'string' },
    distributor: { type: 'string' },
    file: { type: 'string' },
    peer: { type: 'string', multiple: true },
  },
  earnings: {
    ...commonOptions,
    coordinator: { type: 'string' },
    rpc: { type: 'string' },
    distributor: { type: 'string' },
    files: { type: 'string' },
    from: { type: 'string' },
  },
  'dev-fund': {
    ...commonOptions,
    coordinator: { type: 'string' },
    rpc: { type: 'string' },
    eth: { type: 'string' },
    tokens: { type: 'string' },
  },
} as const satisfies Record<string, ParseArgsConfig['options']>;

type Command = keyof typeof commandOptions;

/** A --distributor value: a 0x address or absent. */
function addressOption(value: string | boolean | undefined): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(value))
    throw new CliError(`--distributor must be a 0x address, got "${String(value)}"`);
  return value;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '--version' || command === '-v' || command === 'version') {
    console.log(agentVersion());
    return 0;
  }
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    console.log(HELP.main);
    return command ? 0 : 2;
  }
  if (!(command in commandOptions)) {
    console.error(`gpumesh-agent: unknown command "${command}"\n\n${HELP.main}`);
    return 2;
  }
  const name = command as Command;
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  const maxPositionals = name === 'stake' || name === 'unstake' ? 1 : 0;
  try {
    const parsed = parseArgs({
      args: rest,
      options: commandOptions[name],
      strict: true,
      allowPositionals: true,
    });
    values = parsed.values as Record<string, string | boolean | undefined>;
    positionals = parsed.positionals;
    if (positionals.length > maxPositionals)
      throw new Error(`unexpected argument "${positionals[maxPositionals]}"`);
  } catch (err) {
    console.error(`gpumesh-agent ${name}: ${(err as Error).message}\n\n${HELP[name]}`);
    return 2;
  }
  if (values.help) {
    console.log(HELP[name]);
    return 0;
  }
  const common = {
    dataDir: (values['data-dir'] as string | undefined) ?? defaultDataDir(),
    json: values.json === true,
    env: process.env,
  };
  const out = createOutput(common.json);
  switch (name) {
    case 'init': {
      if (typeof values.coordinator !== 'string') throw new CliError('init needs --coordinator <url>');
      await initCommand(
        {
          ...common,
          coordinator: values.coordinator,
          price: values.price as string,
          region: values.region as string | undefined,
          slots: values.slots as string | undefined,
          jobsPerSlot: values['jobs-per-slot'] as string | undefined,
          backend: values.backend as string | undefined,
          tensorCache: values['tensor-cache'] as string | undefined,
          artifactCache: values['artifact-cache'] as string | undefined,
          force: values.force === true,
          lightKdf: values['light-kdf'] === true,
        },
        out,
      );
      return 0;
    }
    case 'doctor':
      return doctorCommand({ ...common, backend: values.backend as string | undefined }, out);
    case 'benchmark':
      await benchmarkCommand(
        {
          ...common,
          backend: values.backend as string | undefined,
          sweep: values.sweep === true,
          sizes: values.sizes as string | undefined,
          maxSize: values['max-size'] as string | undefined,
          maxSeconds: values['max-seconds'] as string | undefined,
        },
        out,
      );
      return 0;
    case 'gpu-check': {
      const { gpuCheckOptions, gpuCheckCommand } = await import('./cli/gpu-check-command.js');
      return gpuCheckCommand(gpuCheckOptions(values, process.env), out);
    }
    case 'start':
      return startCommand({
        ...common,
        logLevel: values['log-level'] as string,
        coordinatorUrl: values.coordinator as string | undefined,
        maxDisconnected: values['max-disconnected'] as string | undefined,
        tensorCache: values['tensor-cache'] as string | undefined,
        artifactCache: values['artifact-cache'] as string | undefined,
      });
    case 'status':
      await statusCommand(common, out);
      return 0;
    case 'earnings': {
      const { earningsCommand } = await import('./cli/earnings-command.js');
      return earningsCommand(
        {
          ...common,
          coordinator: values.coordinator as string | undefined,
          rpc: values.rpc as string | undefined,
          distributor: addressOption(values.distributor),
          files: values.files as string | undefined,
          from: values.from as string | undefined,
        },
        out,
      );
    }
    case 'stake':
    case 'unstake':
    case 'claim':
    case 'dev-fund': {
      // Loaded on demand: only these commands need the rewards library.
      const { claimCommand, devFundCommand, stakeCommand, unstakeCommand } =
        await import('./cli/chain-commands.js');
      const chain = {
        ...common,
        coordinator: values.coordinator as string | undefined,
        rpc: values.rpc as string | undefined,
      };
      if (name === 'dev-fund') {
        await devFundCommand(
          { ...chain, eth: values.eth as string | undefined, tokens: values.tokens as string | undefined },
          out,
        );
      } else if (name === 'stake') await stakeCommand({ ...chain, amount: positionals[0] }, out);
      else if (name === 'claim') {
        await claimCommand(
          {
            ...chain,
            distributor: addressOption(values.distributor),
            file: values.file as string | undefined,
            peers: (values.peer as string[] | undefined) ?? [],
          },
          out,
        );
      } else {
        if (values.withdraw !== true && positionals[0] === undefined)
          throw new CliError('unstake needs <amount|all>, or --withdraw');
        await unstakeCommand({ ...chain, amount: positionals[0], withdraw: values.withdraw === true }, out);
      }
      return 0;
    }
  }
}

main(process.argv.slice(2))
  .then((code) => process.exit(code))
  .catch((err: unknown) => {
    const known =
      err instanceof CliError || (err instanceof Error && /ConfigError|KeystoreError/.test(err.name));
    console.error(`gpumesh-agent: ${known ? (err as Error).message : String((err as Error)?.stack ?? err)}`);
    process.exit(err instanceof CliError ? err.exitCode : 1);
  });
