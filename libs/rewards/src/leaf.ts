import { ADDRESS_PATTERN } from '@gpumesh/protocol';

import { toHex } from './hex.js';
import { keccak256Bytes } from './keccak.js';

/** What the distributor's leaf commits to (solidity: `abi.encode(index, account, cumulativeAmount)`). */
export interface LeafInput {
  readonly index: number;
  readonly account: string;
  readonly cumulativeAmount: bigint;
}

/** How leaves are hashed, written into every epoch file. */
export const LEAF_ENCODING =
  'keccak256(bytes.concat(keccak256(abi.encode(uint256 index, address account, uint256 cumulativeAmount))))';

const UINT256_MAX = (1n << 256n) - 1n;

function writeUint256(out: Buffer, offset: number, value: bigint): void {
  out.fill(0, offset, offset + 32);
  if (value === 0n) return;
  const hex = value.toString(16);
  out.write(hex.length % 2 ? `0${hex}` : hex, offset + 32 - Math.ceil(hex.length / 2), 'hex');
}

/** Writes the 96 bytes of the encoding into `out` (a Buffer of at least 96 bytes). */
function encodeLeafInto(out: Buffer, leaf: LeafInput): void {
  if (!Number.isSafeInteger(leaf.index) || leaf.index < 0)
    throw new Error(`invalid leaf index ${leaf.index}`);
  if (leaf.cumulativeAmount < 0n || leaf.cumulativeAmount > UINT256_MAX) {
    throw new Error(`invalid cumulative amount ${leaf.cumulativeAmount}`);
  }
  if (!ADDRESS_PATTERN.test(leaf.account)) throw new Error(`invalid account address ${leaf.account}`);
  out.fill(0, 0, 32);
  out.writeUIntBE(leaf.index, 26, 6);
  out.fill(0, 32, 44);
  out.write(leaf.account.slice(2), 44, 'hex');
  writeUint256(out, 64, leaf.cumulativeAmount);
}

/** The 96 bytes of `abi.encode(uint256 index, address account, uint256 cumulativeAmount)`. */
export function encodeLeaf(leaf: LeafInput): Uint8Array {
  const out = Buffer.alloc(96);
  encodeLeafInto(out, leaf);
  return new Uint8Array(out.buffer, out.byteOffset, 96);
}

const scratch = Buffer.alloc(96);

/** The leaf hash: keccak256 of keccak256 of the encoding (OpenZeppelin's double hashing). */
export function leafHashBytes(leaf: LeafInput): Uint8Array {
  encodeLeafInto(scratch, leaf);
  return keccak256Bytes(keccak256Bytes(scratch));
}

/** The leaf hash as 0x hex. */
export function leafHash(leaf: LeafInput): string {
  return toHex(leafHashBytes(leaf));
}
