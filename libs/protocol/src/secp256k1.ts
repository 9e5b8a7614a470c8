// EIP-191 personal signatures on libsecp256k1 (compiled to WebAssembly by tiny-secp256k1) instead of
// ethers' pure-JS curve: the same bytes (RFC 6979 nonces, low-s, v = 27|28), ~6x faster to sign and
// ~8x faster to recover. Every offer and receipt is signed once and verified once, so on the job path
// this is the difference between crypto dominating a core and not.
import { MessagePrefix, getBytes, keccak256, toUtf8Bytes, type Signer } from 'ethers';
import * as ecc from 'tiny-secp256k1';

/** Half the curve order: a canonical (EIP-2) signature has s ≤ this. */
const HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;

/** Something that can sign an EIP-191 message (an ethers Wallet, a remote signer, ...). */
export type MessageSigner = Pick<Signer, 'getAddress' | 'signMessage'>;

function privateKeyOf(signer: MessageSigner): Uint8Array | null {
  const key = (signer as { signingKey?: { privateKey?: unknown } }).signingKey?.privateKey;
  return typeof key === 'string' && /^0x[0-9a-fA-F]{64}$/.test(key) ? getBytes(key) : null;
}

const keyCache = new WeakMap<object, Uint8Array | null>();

/**
 * The EIP-191 digest ethers' `hashMessage` computes (keccak256 of the prefix, the decimal byte length
 * and the message), hashed straight from the bytes: `hashMessage` hex-encodes the message one byte at
 * a time and parses it back: about 60 bytes of strings per message byte, so one offer carrying
 * megabytes of inputs (a capacity probe's 2.7 MB) grew the signing process by some 180 MB that V8
 * kept.
 */
export function personalMessageDigest(message: Uint8Array | string): Uint8Array {
  const bytes = typeof message === 'string' ? toUtf8Bytes(message) : message;
  const prefix = toUtf8Bytes(`${MessagePrefix}${bytes.length}`);
  const data = new Uint8Array(prefix.length + bytes.length);
  data.set(prefix);
  data.set(bytes, prefix.length);
  return getBytes(keccak256(data));
}

/**
 * Signs `message` as EIP-191 `personal_sign`, lower-case 0x hex of r‖s‖v. A local key (an ethers
 * Wallet) signs in WebAssembly; any other signer (hardware, remote) signs through its own signMessage.
 */
export async function signPersonalMessage(
  signer: MessageSigner,
  message: Uint8Array | string,
): Promise<string> {
  let key = keyCache.get(signer);
  if (key === undefined) {
    key = privateKeyOf(signer);
    keyCache.set(signer, key);
  }
  if (key === null) return (await signer.signMessage(message)).toLowerCase();
  const digest = personalMessageDigest(message);
  const { signature, recoveryId } = ecc.signRecoverable(digest, key);
  return `0x${Buffer.from(signature).toString('hex')}${(27 + recoveryId).toString(16)}`;
}

/**
 * The address (lower-case) whose key made the EIP-191 `signature` over `message`, or null when the
 * signature is malformed, not canonical (high s, v other than 27/28, not lower-case hex) or recovers
 * no key.
 */
export function recoverPersonalSigner(message: Uint8Array | string, signature: string): string | null {
  if (!/^0x[0-9a-f]{130}$/.test(signature)) return null;
  const v = Number.parseInt(signature.slice(130, 132), 16);
  if (v !== 27 && v !== 28) return null;
  const s = BigInt(`0x${signature.slice(66, 130)}`);
  const r = BigInt(`0x${signature.slice(2, 66)}`);
  if (s === 0n || r === 0n || s > HALF_N) return null;
  const digest = personalMessageDigest(message);
  let publicKey: Uint8Array | null;
  try {
    publicKey = ecc.recover(digest, Buffer.from(signature.slice(2, 130), 'hex'), (v - 27) as 0 | 1, false);
  } catch {
    return null;
  }
  if (!publicKey) return null;
  return `0x${keccak256(publicKey.subarray(1)).slice(26)}`;
}
