// A float32 matrix multiply in 128-bit WebAssembly SIMD, for the wasm backend's BatchMatMul (see
// wasm-matmul.ts). Why not XNNPACK's kernel, which tfjs-backend-wasm ships: V8 compiles XNNPACK's
// 4×8 wasm kernel to 16 `pshufd` broadcasts and 24 stack spills for every 128 multiplies and adds
// (perf annotate, 2026-11-25); on CPUs whose shuffles share the floating-point pipes (AMD Zen 4 here)
// it reaches 0.61 of the measured wasm SIMD ceiling. The kernel below broadcasts with
// `v128.load32_splat` (a load, no shuffle) and keeps its 8 accumulators, 2 B vectors, the broadcast A
// value and a product in 12 of the 15 xmm registers V8 allocates, so nothing spills.
//
// Layout (GotoBLAS-style): B is packed one block of `kc` rows at a time into panels of 8 columns
// (kc × 8 floats, contiguous); for every 4 rows of A, those rows' kc columns are packed k-major (kc × 4)
// and the kernel runs them against every panel, adding into a 4 × 8 tile of C. A block of B stays in
// the L2 cache while all of A's rows pass over it. Edges are zero-padded (C is Mp × Np, multiples of 4
// and 8); the rows and columns inside M × N are copied out.
import {
  I32,
  I32_ADD,
  I32_MUL,
  I32_SUB,
  SIMD_OP,
  V128,
  WASM_HEADER,
  i32Const,
  instantiate,
  leb,
  localGet,
  localSet,
  localTee,
  memarg,
  name,
  section,
  simd,
  type WasmMemory,
} from './wasm-bytes.js';

/** Rows of A and columns of B in a kernel tile. */
export const GEMM_MR = 4;
export const GEMM_NR = 8;
/** Rows of B packed per block (a block of 1,024 columns is 1 MiB). */
export const GEMM_KC = 256;

const PAGE = 65_536;
/** Largest working memory (packed B block, C) before falling back to another kernel: 1 GiB. */
export const GEMM_MAX_BYTES = 2 ** 30;

/**
 * `panel(ap, bp, cp, k, panels, ldc)`: for each of `panels` packed B panels (k × 8 floats each, one
 * after the other from byte `bp`), adds A-panel(k × 4, at `ap`) · B-panel into the 4 × 8 tile of C at
 * `cp` (rows `ldc` bytes apart), the tile moving 32 bytes right per panel. Exports its memory as `mem`.
 */
export function gemmModule(): Uint8Array {
  // params: 0 ap, 1 bp, 2 cp, 3 k, 4 panels, 5 ldc; i32 locals: 6 a (A cursor), 7 kk (count down)
  const A_CURSOR = 6;
  const K_LEFT = 7;
  const ACC = 8; // 8 v128 accumulators: row r, half h at ACC + 2r + h
  const B0 = ACC + 2 * GEMM_MR;
  const B1 = B0 + 1;
  const AV = B1 + 1;
  const body: number[] = [0x02, 2, I32, ...leb(2 * GEMM_MR + 3), V128];
  const zero = [...simd(SIMD_OP.const), ...new Array<number>(16).fill(0)];
  body.push(0x03, 0x40); // loop over panels
  for (let i = 0; i < 2 * GEMM_MR; i++) body.push(...zero, ...localSet(ACC + i));
  body.push(...localGet(0), ...localSet(A_CURSOR), ...localGet(3), ...localSet(K_LEFT));
  body.push(0x03, 0x40); // loop over k
  body.push(...localGet(1), ...simd(SIMD_OP.load), ...memarg(4, 0), ...localSet(B0));
  body.push(...localGet(1), ...simd(SIMD_OP.load), ...memarg(4, 16), ...localSet(B1));
  for (let r = 0; r < GEMM_MR; r++) {
    body.push(...localGet(A_CURSOR), ...simd(SIMD_OP.load32Splat), ...memarg(2, 4 * r), ...localSet(AV));
    for (const [h, b] of [
      [0, B0],
      [1, B1],
    ] as const) {
      const acc = ACC + 2 * r + h;
      body.push(...localGet(acc), ...localGet(AV), ...localGet(b), ...simd(SIMD_OP.f32x4Mul));
      body.push(...simd(SIMD_OP.f32x4Add), ...localSet(acc));
    }
  }
  body.push(...localGet(A_CURSOR), ...i32Const(4 * GEMM_MR), I32_ADD, ...localSet(A_CURSOR));
  body.push(...localGet(1), ...i32Const(4 * GEMM_NR), I32_ADD, ...localSet(1));
  body.push(...localGet(K_LEFT), ...i32Const(1), I32_SUB, ...localTee(K_LEFT), 0x0d, 0, 0x0b); // br_if k
  // C tile += accumulators
  for (let r = 0; r < GEMM_MR; r++) {
    const row = [...localGet(2), ...localGet(5), ...i32Const(r), I32_MUL, I32_ADD];
    for (let h = 0; h < 2; h++) {
      body.push(...row, ...row, ...simd(SIMD_OP.load), ...memarg(4, 16 * h), ...localGet(ACC + 2 * r + h));
      body.push(...simd(SIMD_OP.f32x4Add), ...simd(SIMD_OP.store), ...memarg(4, 16 * h));
    }
  }
  body.push(...localGet(2), ...i32Const(4 * GEMM_NR), I32_ADD, ...localSet(2));
  body.push(...localGet(4), ...i32Const(1), I32_SUB, ...localTee(4), 0x0d, 0, 0x0b); // br_if panels
  body.push(0x0b);
  return new Uint8Array([
    ...WASM_HEADER,
    ...section(1, [1, 0x60, 6, I32, I32, I32, I32, I32, I32, 0]), // (i32 × 6) -> ()
    ...section(3, [1, 0]),
    ...section(5, [1, 0, 1]), // memory: 1 page to start, grown on demand
    ...section(7, [2, ...name('panel'), 0x00, 0, ...name('mem'), 0x02, 0]),
    ...section(10, [1, ...leb(body.length), ...body]),
  ]);
}

/** One matrix operand: `data` from `offset`, row-major, stored transposed when `transposed`. */
export interface GemmOperand {
  readonly data: Float32Array;
  readonly offset: number;
  readonly transposed: boolean;
}

type PanelFn = (ap: number, bp: number, cp: number, k: number, panels: number, ldc: number) => void;

const roundUp = (n: number, to: number): number => Math.ceil(n / to) * to;

/** Bytes of working memory a product of these sizes needs (packed A panel, packed B block, C). */
export function gemmBytes(m: number, n: number, k: number): number {
  const kc = Math.min(GEMM_KC, Math.max(k, 1));
  return 4 * (kc * GEMM_MR + kc * roundUp(n, GEMM_NR) + roundUp(m, GEMM_MR) * roundUp(n, GEMM_NR));
}

/** The kernel's instance in this thread, with its own memory (not the tfjs heap). */
export class WasmGemm {
  private readonly panel: PanelFn;
  private readonly memory: WasmMemory;
  private f32: Float32Array;

  constructor() {
    const exports = instantiate(gemmModule());
    this.panel = exports.panel as PanelFn;
    this.memory = exports.mem as WasmMemory;
    this.f32 = new Float32Array(this.memory.buffer);
  }

  /** Bytes of memory the instance holds (it grows to the largest product and stays there). */
  get memoryBytes(): number {
    return this.memory.buffer.byteLength;
  }

  /**
   * Grows the memory to what an M × K · K × N product needs (a no-op when it has it). Throws
   * RangeError past GEMM_MAX_BYTES, or when the memory cannot grow.
   */
  reserve(m: number, n: number, k: number): void {
    const bytes = gemmBytes(m, n, k);
    if (bytes > GEMM_MAX_BYTES) throw new RangeError(`matmul needs ${bytes} bytes of kernel memory`);
    if (bytes > this.memory.buffer.byteLength) {
      this.memory.grow(Math.ceil((bytes - this.memory.buffer.byteLength) / PAGE));
      this.f32 = new Float32Array(this.memory.buffer);
    }
  }

  /**
   * out[outOffset ..] (M × N, row-major) = op(A) (M × K) · op(B) (K × N), where op transposes an
   * operand stored transposed (A as K × M, B as N × K). Throws RangeError past GEMM_MAX_BYTES.
   */
  multiply(
    a: GemmOperand,
    b: GemmOperand,
    m: number,
    n: number,
    k: number,
    out: Float32Array,
    outOffset: number,
  ): void {
    if (m === 0 || n === 0) return;
    if (k === 0) {
      out.fill(0, outOffset, outOffset + m * n);
      return;
    }
    this.reserve(m, n, k);
    const f = this.f32;
    const kc = Math.min(GEMM_KC, k);
    const np = roundUp(n, GEMM_NR);
    const mp = roundUp(m, GEMM_MR);
    // Float offsets in the kernel's memory: A panel, B block, C.
    const aPanel = 0;
    const bBlock = aPanel + kc * GEMM_MR;
    const c = bBlock + kc * np;
    f.fill(0, c, c + mp * np);
    const A = a.data;
    const B = b.data;
    // Element strides of op(A)[i][kk] and op(B)[kk][j] in their arrays.
    const aRow = a.transposed ? 1 : k;
    const aCol = a.transposed ? m : 1;
    const bRow = b.transposed ? 1 : n;
    const bCol = b.transposed ? k : 1;
    for (let k0 = 0; k0 < k; k0 += kc) {
      const kb = Math.min(kc, k - k0);
      // Pack B rows k0 .. k0+kb into panels of 8 columns, zero past column n.
      let p = bBlock;
      for (let j0 = 0; j0 < np; j0 += GEMM_NR) {
        const cols = Math.min(GEMM_NR, n - j0);
        if (cols === GEMM_NR && bCol === 1) {
          // The common case, unrolled: 8 contiguous floats of each row.
          for (let kk = k0, src = b.offset + kk * bRow + j0; kk < k0 + kb; kk++, src += bRow, p += 8) {
            f[p] = B[src];
            f[p + 1] = B[src + 1];
            f[p + 2] = B[src + 2];
            f[p + 3] = B[src + 3];
            f[p + 4] = B[src + 4];
            f[p + 5] = B[src + 5];
            f[p + 6] = B[src + 6];
            f[p + 7] = B[src + 7];
          }
          continue;
        }
        for (let kk = k0; kk < k0 + kb; kk++) {
          let src = b.offset + kk * bRow + j0 * bCol;
          for (let j = 0; j < cols; j++, src += bCol) f[p + j] = B[src];
          for (let j = cols; j < GEMM_NR; j++) f[p + j] = 0;
          p += GEMM_NR;
        }
      }
      for (let i0 = 0; i0 < mp; i0 += GEMM_MR) {
        // Pack A rows i0 .. i0+3, columns k0 .. k0+kb, k-major; zero past row m.
        const rows = Math.min(GEMM_MR, m - i0);
        let q = aPanel;
        if (rows === GEMM_MR) {
          // The common case, unrolled: 4 rows at each k.
          for (let kk = k0, src = a.offset + i0 * aRow + kk * aCol; kk < k0 + kb; kk++, src += aCol, q += 4) {
            f[q] = A[src];
            f[q + 1] = A[src + aRow];
            f[q + 2] = A[src + 2 * aRow];
            f[q + 3] = A[src + 3 * aRow];
          }
        } else {
          for (let kk = k0; kk < k0 + kb; kk++) {
            let src = a.offset + i0 * aRow + kk * aCol;
            for (let r = 0; r < rows; r++, src += aRow) f[q + r] = A[src];
            for (let r = rows; r < GEMM_MR; r++) f[q + r] = 0;
            q += GEMM_MR;
          }
        }
        this.panel(4 * aPanel, 4 * bBlock, 4 * (c + i0 * np), kb, np / GEMM_NR, 4 * np);
      }
    }
    for (let i = 0; i < m; i++) out.set(f.subarray(c + i * np, c + i * np + n), outOffset + i * n);
  }
}
