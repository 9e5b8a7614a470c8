import {
  createCipheriv,
  createDecipheriv,
  randomBytes,
  scrypt as scryptCb,
  type ScryptOptions,
} from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Wallet, type HDNodeWallet } from 'ethers';
import { z } from 'zod';
import { generatePeerKey, peerIdStringOf, peerKeyFromHex, peerKeyToHex } from '@gpumesh/p2p';
import { LOWER_CASE_ADDRESS_PATTERN } from '@gpumesh/protocol';
import type { PrivateKey } from '@libp2p/interface';

/** scrypt cost of the keystore; `light` is for tests and throwaway dev agents only. */
export const KEYSTORE_SCRYPT = { N: 2 ** 17, r: 8, p: 1 } as const;
export const LIGHT_KEYSTORE_SCRYPT = { N: 2 ** 12, r: 8, p: 1 } as const;

const encryptedSchema = z.strictObject({
  kdf: z.literal('scrypt'),
  n: z.number().int().positive(),
  r: z.number().int().positive(),
  p: z.number().int().positive(),
  salt: z.string().regex(/^[0-9a-f]+$/),
  iv: z.string().regex(/^[0-9a-f]{24}$/),
  tag: z.string().regex(/^[0-9a-f]{32}$/),
  ciphertext: z.string().regex(/^[0-9a-f]+$/),
});

const keystoreSchema = z.strictObject({
  version: z.literal(1),
  address: z.string().regex(LOWER_CASE_ADDRESS_PATTERN),
  peerId: z.string().min(1),
  /** Both secrets (the EVM private key and the libp2p key), AES-256-GCM under a scrypt-derived key. */
  secrets: encryptedSchema,
});

export type KeystoreFile = z.output<typeof keystoreSchema>;

export interface UnlockedIdentity {
  wallet: Wallet;
  peerKey: PrivateKey;
  peerId: string;
  address: string;
}

export class KeystoreError extends Error {
  constructor(
    readonly code: 'WRONG_PASSPHRASE' | 'MALFORMED' | 'NOT_FOUND' | 'EXISTS' | 'WEAK_PASSPHRASE',
    message: string,
  ) {
    super(message);
    this.name = 'KeystoreError';
  }
}

function scrypt(
  passphrase: string,
  salt: Buffer,
  params: { N: number; r: number; p: number },
): Promise<Buffer> {
  const options: ScryptOptions = { ...params, maxmem: 256 * params.N * params.r + 1024 * 1024 };
  return new Promise((resolve, reject) =>
    scryptCb(passphrase, salt, 32, options, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/** Creates a new identity (EVM wallet + libp2p key) and its encrypted keystore document. */
export async function createKeystore(
  passphrase: string,
  options: { light?: boolean } = {},
): Promise<{ file: KeystoreFile; identity: UnlockedIdentity }> {
  if (passphrase.length < 8)
    throw new KeystoreError('WEAK_PASSPHRASE', 'passphrase: use at least 8 characters');
  const wallet: HDNodeWallet = Wallet.createRandom();
  const peerKey = await generatePeerKey();
  const params = options.light ? LIGHT_KEYSTORE_SCRYPT : KEYSTORE_SCRYPT;
  const salt = randomBytes(16);
  const iv = randomBytes(12);
  const key = await scrypt(passphrase, salt, params);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const plaintext = Buffer.from(JSON.stringify({ evm: wallet.privateKey, libp2p: peerKeyToHex(peerKey) }));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const file: KeystoreFile = {
    version: 1,
    address: wallet.address.toLowerCase(),
    peerId: peerIdStringOf(peerKey),
    secrets: {
      kdf: 'scrypt',
      n: params.N,
      r: params.r,
      p: params.p,
      salt: salt.toString('hex'),
      iv: iv.toString('hex'),
      tag: cipher.getAuthTag().toString('hex'),
      ciphertext: ciphertext.toString('hex'),
    },
  };
  return {
    file,
    identity: { wallet: new Wallet(wallet.privateKey), peerKey, peerId: file.peerId, address: file.address },
  };
}

/** Decrypts a keystore document; a wrong passphrase is reported as such, not as a crash. */
export async function unlockKeystore(input: unknown, passphrase: string): Promise<UnlockedIdentity> {
  const parsed = keystoreSchema.safeParse(input);
  if (!parsed.success)
    throw new KeystoreError('MALFORMED', `keystore: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  const file = parsed.data;
  const s = file.secrets;
  const key = await scrypt(passphrase, Buffer.from(s.salt, 'hex'), { N: s.n, r: s.r, p: s.p });
  let plaintext: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(s.iv, 'hex'));
    decipher.setAuthTag(Buffer.from(s.tag, 'hex'));
    plaintext = Buffer.concat([decipher.update(Buffer.from(s.ciphertext, 'hex')), decipher.final()]);
  } catch {
    throw new KeystoreError('WRONG_PASSPHRASE', 'the passphrase does not open this keystore');
  }
  const secrets = JSON.parse(plaintext.toString('utf8')) as { evm: string; libp2p: string };
  const wallet = new Wallet(secrets.evm);
  const peerKey = peerKeyFromHex(secrets.libp2p);
  const peerId = peerIdStringOf(peerKey);
  if (wallet.address.toLowerCase() !== file.address || peerId !== file.peerId) {
    throw new KeystoreError(
      'MALFORMED',
      'keystore: the decrypted keys do not match the stored address/peer id',
    );
  }
  return { wallet, peerKey, peerId, address: file.address };
}

export async function writeKeystore(path: string, file: KeystoreFile, overwrite = false): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  try {
    await writeFile(path, `${JSON.stringify(file, null, 2)}\n`, {
      mode: 0o600,
      flag: overwrite ? 'w' : 'wx',
    });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new KeystoreError(
        'EXISTS',
        `${path} already exists; pass --force to replace it (the old identity is lost)`,
      );
    }
    throw err;
  }
  await chmod(path, 0o600);
}

export async function readKeystore(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new KeystoreError('NOT_FOUND', `no keystore at ${path}; run \`gpumesh-agent init\` first`);
    }
    throw new KeystoreError('MALFORMED', `${path}: not a JSON keystore`);
  }
}
