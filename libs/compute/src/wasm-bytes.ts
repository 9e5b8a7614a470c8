// Just enough of the WebAssembly binary format to assemble the two small SIMD modules of this library
// (the ceiling probe and the matmul kernel) in code, with no toolchain: LEB128 numbers, sections,
// instructions by opcode, and the WebAssembly global's API.

/** Unsigned LEB128. */
export function leb(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (i32.const immediates). */
export function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const byte = n & 0x7f;
    n >>= 7;
    const done = (n === 0 && (byte & 0x40) === 0) || (n === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

export function section(id: number, body: readonly number[]): number[] {
  return [id, ...leb(body.length), ...body];
}

/** The module header: magic and version 1. */
export const WASM_HEADER: readonly number[] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

/** Value types. */
export const I32 = 0x7f;
export const F32 = 0x7d;
export const V128 = 0x7b;

/** SIMD instructions (prefix 0xfd) used here. */
export const SIMD_OP = {
  load: 0,
  load32Splat: 9,
  store: 11,
  const: 12,
  f32x4Splat: 19,
  f32x4ExtractLane: 31,
  f32x4Add: 228,
  f32x4Mul: 230,
} as const;

export const simd = (code: number): number[] => [0xfd, ...leb(code)];
export const localGet = (i: number): number[] => [0x20, ...leb(i)];
export const localSet = (i: number): number[] => [0x21, ...leb(i)];
export const localTee = (i: number): number[] => [0x22, ...leb(i)];
export const i32Const = (n: number): number[] => [0x41, ...sleb(n)];
export const I32_ADD = 0x6a;
export const I32_SUB = 0x6b;
export const I32_MUL = 0x6c;
/** `memarg` of a load or store: log2 of the alignment, then the offset. */
export const memarg = (alignLog2: number, offset: number): number[] => [alignLog2, ...leb(offset)];
/** A name in the export section. */
export const name = (text: string): number[] => {
  const bytes = [...Buffer.from(text)];
  return [...leb(bytes.length), ...bytes];
};

/** The part of the WebAssembly global used here (this project's TypeScript libs do not declare it). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object) => { readonly exports: Record<string, unknown> };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** Compiles and instantiates `bytes` (no imports) and returns its exports. */
export function instantiate(bytes: Uint8Array): Record<string, unknown> {
  return new wasm.Instance(new wasm.Module(bytes)).exports;
}
