import { ADDRESS_PATTERN } from '@gpumesh/protocol';

import { toHex } from './hex.js';
import { keccak256Bytes } from './keccak.js';

/**
 * The domain a leaf belongs to: the chain and the distributor that pays it. Both are inside every
 * leaf, so a ticket proves a claim on one distributor of one chain and on no other (the same tree
 * posted to a second distributor, or on a fork with another chain id, proves nothing there).
 */
export interface LeafDomain {
  readonly chainId: number;
  /** 0x address of the RewardsDistributor. */
  readonly distributor: string;
}

/** What the distributor's leaf commits to (solidity: `abi.encode(block.chainid, address(this), index, account, cumulativeAmount)`). */
export interface LeafInput extends LeafDomain {
  readonly index: number;
  readonly account: string;
  readonly cumulativeAmount: bigint;
}

/**
 * The ABI types of a leaf's value, in order: OpenZeppelin `StandardMerkleTree`'s `leafEncoding`.
 * The leaf hash is `keccak256(bytes.concat(keccak256(abi.encode(value))))`.
 */
export const LEAF_ENCODING = ['uint256', 'address', 'uint256', 'address', 'uint256'] as const;

/** Bytes of one encoded leaf: five 32-byte words. */
const LEAF_BYTES = 160;
const UINT256_MAX = (1n << 256n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

/** Writes `value` as the uint256 word at `offset` (throws past 2^256 - 1). */
export function writeUint256(out: Buffer, offset: number, value: bigint): void {
  if (value < 0n || value > UINT256_MAX) throw new Error(`invalid cumulative amount ${value}`);
  out.fill(0, offset, offset + 32);
  // Amounts are uint64 on chain: one word write, not a trip through hex.
  if (value <= UINT64_MAX) {
    out.writeBigUInt64BE(value, offset + 24);
    return;
  }
  const hex = value.toString(16);
  out.write(hex.length % 2 ? `0${hex}` : hex, offset + 32 - Math.ceil(hex.length / 2), 'hex');
}

/** Writes a non-negative integer below 2^48 as the word at `offset` (throws on anything else). */
export function writeSafeInteger(out: Buffer, offset: number, value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`invalid leaf ${what} ${value}`);
  out.fill(0, offset, offset + 32);
  out.writeUIntBE(value, offset + 26, 6);
}

function writeAddress(out: Buffer, offset: number, address: string, what: string): void {
  if (!ADDRESS_PATTERN.test(address)) throw new Error(`invalid ${what} address ${address}`);
  out.fill(0, offset, offset + 12);
  out.write(address.slice(2), offset + 12, 'hex');
}

/** Writes the 160 bytes of the encoding into `out` (a Buffer of at least 160 bytes). */
function encodeLeafInto(out: Buffer, leaf: LeafInput): void {
  writeSafeInteger(out, 0, leaf.chainId, 'chain id');
  writeAddress(out, 32, leaf.distributor, 'distributor');
  writeSafeInteger(out, 64, leaf.index, 'index');
  writeAddress(out, 96, leaf.account, 'account');
  writeUint256(out, 128, leaf.cumulativeAmount);
}

/** The 160 bytes of `abi.encode(uint256 chainId, address distributor, uint256 index, address account, uint256 cumulativeAmount)`. */
export function encodeLeaf(leaf: LeafInput): Uint8Array {
  const out = Buffer.alloc(LEAF_BYTES);
  encodeLeafInto(out, leaf);
  return new Uint8Array(out.buffer, out.byteOffset, LEAF_BYTES);
}

const scratch = Buffer.alloc(LEAF_BYTES);

/** The leaf hash: keccak256 of keccak256 of the encoding (OpenZeppelin's double hashing). */
export function leafHashBytes(leaf: LeafInput): Uint8Array {
  encodeLeafInto(scratch, leaf);
  return keccak256Bytes(keccak256Bytes(scratch));
}

/**
 * `leafHashBytes` for many leaves of one domain, with the chain id and distributor encoded once.
 * Gives the same bytes as `leafHashBytes` (`epoch-file.spec.ts`).
 */
export function leafHasher(
  domain: LeafDomain,
): (index: number, account: string, cumulativeAmount: bigint) => Uint8Array {
  const out = Buffer.alloc(LEAF_BYTES);
  writeSafeInteger(out, 0, domain.chainId, 'chain id');
  writeAddress(out, 32, domain.distributor, 'distributor');
  return (index, account, cumulativeAmount) => {
    writeSafeInteger(out, 64, index, 'index');
    writeAddress(out, 96, account, 'account');
    writeUint256(out, 128, cumulativeAmount);
    return keccak256Bytes(keccak256Bytes(out));
  };
}

/** The leaf hash as 0x hex. */
export function leafHash(leaf: LeafInput): string {
  return toHex(leafHashBytes(leaf));
}
