import { createKeccak } from 'hash-wasm';

// hash-wasm's Keccak runs in WebAssembly: about 1 µs per 64-byte hash here, 15-20× the pure-JS
// implementations, which is what lets 100,000 leaves build a tree in well under a second.
const hasher = await createKeccak(256);

/** Keccak-256 (the EVM's `keccak256`, not SHA3-256) of `data`. */
export function keccak256Bytes(data: Uint8Array): Uint8Array {
  hasher.init();
  hasher.update(data);
  return hasher.digest('binary');
}

/** Keccak-256 of `data` as 0x-prefixed lower-case hex. */
export function keccak256Hex(data: Uint8Array | string): string {
  hasher.init();
  // hash-wasm takes a string as its UTF-8 bytes, without an encoded copy of it.
  hasher.update(data);
  return `0x${hasher.digest('hex')}`;
}
