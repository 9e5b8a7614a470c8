import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Wallet } from 'ethers';
import type { PrivateKey } from '@libp2p/interface';
import { z } from 'zod';
import { generatePeerKey, peerKeyFromHex, peerKeyToHex } from '@gpumesh/p2p';

const identityFileSchema = z.strictObject({
  version: z.literal(1),
  /** Signs job offers; agents accept offers only from this address. */
  signerPrivateKey: z.string().regex(/^0x[0-9a-f]{64}$/),
  /** The libp2p identity of this coordinator process. */
  peerKey: z.string().regex(/^[0-9a-f]+$/),
});

export interface CoordinatorIdentity {
  signer: Wallet;
  address: string;
  peerKey: PrivateKey;
}

/**
 * Loads the coordinator's keys from its identity file (mode 0600), creating them on first start.
 * Every worker of one marketplace must share the signer; give each worker process its own file
 * (COORDINATOR_KEY_FILE) with the same signerPrivateKey and its own peerKey.
 */
export async function loadCoordinatorIdentity(path: string): Promise<CoordinatorIdentity> {
  let raw: string | undefined;
  try {
    raw = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (raw === undefined) {
    const wallet = Wallet.createRandom();
    const peerKey = await generatePeerKey();
    const file = {
      version: 1,
      signerPrivateKey: wallet.privateKey.toLowerCase(),
      peerKey: peerKeyToHex(peerKey),
    };
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await writeFile(path, `${JSON.stringify(file, null, 2)}\n`, { mode: 0o600, flag: 'wx' }).catch(
      async (err: unknown) => {
        // Another process created it first: use theirs.
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      },
    );
    await chmod(path, 0o600).catch(() => undefined);
    raw = await readFile(path, 'utf8');
  }
  const parsed = identityFileSchema.safeParse(JSON.parse(raw));
  if (!parsed.success)
    throw new Error(`${path}: not a coordinator identity file (${parsed.error.issues[0]?.message})`);
  const signer = new Wallet(parsed.data.signerPrivateKey);
  return { signer, address: signer.address.toLowerCase(), peerKey: peerKeyFromHex(parsed.data.peerKey) };
}
