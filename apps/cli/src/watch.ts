// gpumesh watch [--coordinator <url>] [--peer <multiaddr>]... [--rpc <url>] [--distributor <address>]
//               [--from-epoch <n>] [--poll-ms <ms>] [--save-dir <dir> [--listen <multiaddr>]] [--once] [--json]
// Follows the epoch roots on chain, fetches each epoch's file (from the coordinator, else from peers
// over /gpumesh/epoch-file/1 by the hash on chain) and audits it against the chain; with `--listen`
// it serves the files it kept to other peers the same way (a copy of the data outside the
// coordinator for providers to claim with); with
// a guardian key (GPUMESH_GUARDIAN_KEY, never on the command line) it vetoes a wrong root inside
// its challenge window. `--once` checks what is posted and exits 0 when every root is right.
import { chmod, mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { Wallet } from 'ethers';

import type { GpumeshNode } from '@gpumesh/p2p';

import type { CliIo } from './io.js';

export const GUARDIAN_KEY_ENV = 'GPUMESH_GUARDIAN_KEY';

export const WATCH_USAGE = `usage: gpumesh watch [--coordinator <url>] [--peer <multiaddr>]... [--rpc <url>] [--distributor <address>] [--escrow <address>] [--from-epoch <n>] [--poll-ms <ms>] [--save-dir <dir> [--listen <multiaddr>]] [--once] [--json]

Checks every epoch root the distributor holds against the epoch's file (from the coordinator, or
from peers that keep it when the coordinator withholds it or is gone):
each leaf's arithmetic and receipts, continuity with the previous epoch, the Merkle root, the
file hash, and the escrow debits committed as the epoch's funding root. With a guardian key in ${GUARDIAN_KEY_ENV} it vetoes a wrong root inside its challenge
window by itself; without one it reports.

  --coordinator <url>      where epoch files are fetched (GET /v1/rewards/epochs/:n/file)
  --peer <multiaddr>       a peer that keeps epoch files (an agent, another watcher), with /p2p/<id>;
                           asked, in order, when the coordinator has no file; repeatable
  --rpc <url>              the chain (default: the coordinator's GET /v1/rewards/chain)
  --distributor <address>  the RewardsDistributor (default: the coordinator's chain info; pin it)
  --escrow <address>       the JobEscrow whose debits fund it: each file's funding must name it
                           (default: the coordinator's chain info, when --distributor is not given)
  --from-epoch <n>         first epoch to check (default 1)
  --poll-ms <ms>           how often the chain is read (default 2000)
  --save-dir <dir>         keep every file that checks out as <dir>/epoch-<n>.json: with it a provider
                           claims after the coordinator is gone (gpumesh-agent claim --file)
  --listen <multiaddr>     serve the kept files over /gpumesh/epoch-file/1 (e.g. /ip4/0.0.0.0/tcp/4010),
                           as <save-dir>/peer-key's peer id (made on first use); needs --save-dir
  --once                   check once and exit: 0 every root right, 1 a root wrong or a file missing
  --json                   one JSON object a line`;

interface ChainInfo {
  chainId: number;
  rpcUrl: string | null;
  distributor: string;
  escrow?: string;
}

/** Whole time the peers get to hand over one file. */
const PEER_FETCH_TIMEOUT_MS = 30_000;

async function fetchText(url: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(15_000) });
  return { status: res.status, text: await res.text() };
}

/** The file's bytes as the coordinator serves them; null when it has none (404). */
async function fileFromCoordinator(coordinator: string, epoch: number): Promise<Uint8Array | null> {
  const res = await fetch(`${coordinator}/v1/rewards/epochs/${epoch}/file`, {
    signal: AbortSignal.timeout(60_000),
  });
  if (res.status === 404) return null;
  if (res.status !== 200) throw new Error(`the coordinator answered ${res.status}`);
  return new Uint8Array(await res.arrayBuffer());
}

/** Runs `gpumesh watch` on `argv` (without the command name) and returns the exit code. */
export async function runWatchCli(
  argv: readonly string[],
  io: CliIo,
  signal: AbortSignal = new AbortController().signal,
  env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
  let values: {
    coordinator?: string;
    peer?: string[];
    rpc?: string;
    distributor?: string;
    escrow?: string;
    'from-epoch'?: string;
    'poll-ms'?: string;
    'save-dir'?: string;
    listen?: string;
    once?: boolean;
    json?: boolean;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        coordinator: { type: 'string' },
        peer: { type: 'string', multiple: true },
        rpc: { type: 'string' },
        distributor: { type: 'string' },
        escrow: { type: 'string' },
        'from-epoch': { type: 'string' },
        'poll-ms': { type: 'string' },
        'save-dir': { type: 'string' },
        listen: { type: 'string' },
        once: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean' },
      },
    }));
  } catch (err) {
    io.err(`gpumesh watch: ${(err as Error).message}\n${WATCH_USAGE}`);
    return 2;
  }
  if (values.help) {
    io.out(WATCH_USAGE);
    return 0;
  }
  const positive = (name: string, raw: string | undefined, fallback: number): number => {
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got "${raw}"`);
    return n;
  };
  let fromEpoch: number;
  let pollMs: number;
  const peers = values.peer ?? [];
  try {
    if (!values.coordinator && peers.length === 0) throw new Error('--coordinator or --peer is required');
    if (!values.coordinator && (!values.rpc || !values.distributor))
      throw new Error('without --coordinator, pass --rpc and --distributor');
    if (values.coordinator) new URL(values.coordinator);
    for (const peer of peers) {
      if (!/^\/.+\/p2p\/[1-9A-HJ-NP-Za-km-z]+$/.test(peer))
        throw new Error(`--peer must be a multiaddr ending in /p2p/<peer id>, got "${peer}"`);
    }
    if (values.listen !== undefined && values['save-dir'] === undefined)
      throw new Error('--listen serves the kept files: it needs --save-dir');
    if (values.listen !== undefined && !values.listen.startsWith('/'))
      throw new Error(`--listen must be a multiaddr such as /ip4/0.0.0.0/tcp/4010, got "${values.listen}"`);
    fromEpoch = positive('from-epoch', values['from-epoch'], 1);
    pollMs = positive('poll-ms', values['poll-ms'], 2_000);
    if (values.distributor !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(values.distributor))
      throw new Error(`--distributor must be a 0x address, got "${values.distributor}"`);
    if (values.escrow !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(values.escrow))
      throw new Error(`--escrow must be a 0x address, got "${values.escrow}"`);
  } catch (err) {
    io.err(`gpumesh watch: ${(err as Error).message}\n${WATCH_USAGE}`);
    return 2;
  }
  const coordinator = values.coordinator?.replace(/\/+$/, '');
  let rpcUrl = values.rpc;
  let distributor = values.distributor;
  let escrow = values.escrow;
  if (coordinator && (!rpcUrl || !distributor)) {
    const res = await fetchText(`${coordinator}/v1/rewards/chain`).catch((err: unknown) => ({
      status: 0,
      text: String(err),
    }));
    if (res.status !== 200) {
      io.err(
        `gpumesh watch: cannot read ${coordinator}/v1/rewards/chain (${res.status}): pass --rpc and --distributor`,
      );
      return 1;
    }
    const info = JSON.parse(res.text) as ChainInfo;
    rpcUrl ??= info.rpcUrl ?? undefined;
    if (distributor === undefined) escrow ??= info.escrow;
    distributor ??= info.distributor;
  }
  if (!rpcUrl || !distributor) {
    io.err('gpumesh watch: the coordinator publishes no RPC URL: pass --rpc');
    return 1;
  }
  const saveDir = values['save-dir'];
  const key = env[GUARDIAN_KEY_ENV];
  const { EpochWatcher, keccak256Hex, rpcProvider } = await import('@gpumesh/rewards');
  const provider = rpcProvider(rpcUrl);
  let guardian: Wallet | undefined;
  try {
    guardian = key ? new Wallet(key, provider) : undefined;
  } catch {
    io.err(`gpumesh watch: ${GUARDIAN_KEY_ENV} is not a private key`);
    provider.destroy();
    return 2;
  }
  // The files kept in --save-dir by the hash of their bytes: what --listen serves.
  const kept = new Map<string, string>();
  let node: GpumeshNode | undefined;
  if (values.listen !== undefined && saveDir !== undefined) {
    try {
      node = await startFileServer(saveDir, values.listen, kept, (b) => keccak256Hex(b));
    } catch (err) {
      io.err(`gpumesh watch: cannot serve on ${values.listen}: ${(err as Error).message}`);
      provider.destroy();
      return 1;
    }
    const served = node.getMultiaddrs().map((a) => a.toString());
    if (values.json) {
      io.out(
        JSON.stringify({
          time: new Date().toISOString(),
          kind: 'serving',
          addresses: served,
          files: kept.size,
        }),
      );
    } else {
      io.out(`serving ${kept.size} kept epoch file(s) at ${served.join(', ')}`);
    }
  }
  // Dialled only when the coordinator has no file; without --listen a fresh identity that listens on nothing.
  const fileFromPeers = async (fileHash: string): Promise<Uint8Array> => {
    const { createGpumeshNode, fetchEpochFileFromAny } = await import('@gpumesh/p2p');
    node ??= await createGpumeshNode({ listen: [], maxConnections: peers.length + 4 });
    const { bytes } = await fetchEpochFileFromAny(node, peers, fileHash, {
      hash: (b) => keccak256Hex(b),
      timeoutMs: PEER_FETCH_TIMEOUT_MS,
    });
    return bytes;
  };
  let bad = 0;
  const watcher = new EpochWatcher({
    distributor,
    escrow,
    provider,
    guardian,
    fromEpoch,
    ...(saveDir === undefined
      ? {}
      : {
          keep: async (epoch: number, file: Uint8Array | string) => {
            await mkdir(saveDir, { recursive: true });
            const path = join(saveDir, `epoch-${epoch}.json`);
            await writeFile(`${path}.tmp`, file);
            await rename(`${path}.tmp`, path);
            kept.set(keccak256Hex(typeof file === 'string' ? Buffer.from(file) : file), path);
          },
        }),
    fetchFile: async (epoch, fileHash) => {
      const failures: string[] = [];
      if (coordinator) {
        try {
          const bytes = await fileFromCoordinator(coordinator, epoch);
          if (bytes) return bytes;
          failures.push('the coordinator has none');
        } catch (err) {
          failures.push(`coordinator: ${(err as Error).message}`);
        }
      }
      if (peers.length === 0) {
        if (failures[0] === 'the coordinator has none') return null;
        throw new Error(failures.join('; '));
      }
      try {
        return await fileFromPeers(fileHash);
      } catch (err) {
        throw new Error([...failures, `peers: ${(err as Error).message}`].join('; '));
      }
    },
    onEvent: (event) => {
      if (event.kind !== 'ok') bad += 1;
      if (values.json) {
        io.out(JSON.stringify({ time: new Date().toISOString(), ...event }));
        return;
      }
      switch (event.kind) {
        case 'ok':
          io.out(
            `epoch ${event.epoch}: OK (${event.leaves} leaves, total ${event.total}, root ${event.root})`,
          );
          break;
        case 'wrong':
          io.out(`epoch ${event.epoch}: WRONG root ${event.root}`);
          for (const p of event.problems.slice(0, 10)) io.out(`  ${p.code}: ${p.message}`);
          io.out(
            event.veto.sent
              ? `  vetoed (tx ${event.veto.txHash}, reason ${event.reason})`
              : `  not vetoed: ${event.veto.why}`,
          );
          break;
        case 'unavailable':
          io.out(
            `epoch ${event.epoch}: file unavailable (${event.why}); final at ${new Date(event.claimableAt * 1000).toISOString()}`,
          );
          break;
        case 'error':
          io.err(`gpumesh watch: ${event.why}`);
          break;
      }
    },
  });
  if (!values.json) {
    io.out(
      `watching ${distributor} on ${rpcUrl} from epoch ${fromEpoch}; files from ${[coordinator, ...peers].filter(Boolean).join(', ')}; ${guardian ? `vetoes as guardian ${guardian.address}` : 'report only (no guardian key)'}`,
    );
  }
  try {
    if (values.once) {
      await watcher.checkOnce();
      return bad === 0 ? 0 : 1;
    }
    await watcher.run(signal, pollMs);
    return 0;
  } catch (err) {
    io.err(`gpumesh watch: ${(err as Error).message}`);
    return 1;
  } finally {
    provider.destroy();
    await node?.stop();
  }
}

/**
 * Serves the epoch files kept in `saveDir` over /gpumesh/epoch-file/1 on `listen`, as the peer whose
 * key is kept in `<saveDir>/peer-key` (made on first use, readable by its owner only): a stable
 * address others can list as `--peer` or in an agent's epochPeers. `kept` is filled with the files
 * already there and grows as the watcher keeps more.
 */
async function startFileServer(
  saveDir: string,
  listen: string,
  kept: Map<string, string>,
  hash: (bytes: Uint8Array) => string,
): Promise<GpumeshNode> {
  const { createGpumeshNode, generatePeerKey, handleEpochFileRequests, peerKeyFromHex, peerKeyToHex } =
    await import('@gpumesh/p2p');
  await mkdir(saveDir, { recursive: true });
  const keyPath = join(saveDir, 'peer-key');
  let privateKey;
  try {
    privateKey = peerKeyFromHex((await readFile(keyPath, 'utf8')).trim());
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    privateKey = await generatePeerKey();
    await writeFile(keyPath, `${peerKeyToHex(privateKey)}\n`, { mode: 0o600 });
    await chmod(keyPath, 0o600);
  }
  for (const name of await readdir(saveDir)) {
    if (/^epoch-\d+\.json$/.test(name))
      kept.set(hash(await readFile(join(saveDir, name))), join(saveDir, name));
  }
  const node = await createGpumeshNode({ privateKey, listen: [listen] });
  await handleEpochFileRequests(node, {
    getFile: async (fileHash) => {
      const path = kept.get(fileHash);
      return path === undefined ? undefined : new Uint8Array(await readFile(path));
    },
  });
  return node;
}
