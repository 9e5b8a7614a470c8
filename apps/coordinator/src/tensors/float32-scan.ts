// Finding the first NaN or ±Infinity of float32 bytes that arrive in pieces: the writer thread checks
// uploads with it as they are stored, and the event loop checks a stored file no upload checked.
import type { NonFinite } from './tensor-writer-messages.js';

export class Float32FiniteScan {
  /** Elements checked so far. */
  private index = 0;
  /** The 1–3 bytes of an element cut by the end of the last piece. */
  private carry = new Uint8Array(0);
  private found: NonFinite | null = null;

  /** Checks the next bytes; returns the first element that is not finite once one is seen. */
  update(bytes: Uint8Array): NonFinite | null {
    if (this.found) return this.found;
    let data = bytes;
    if (this.carry.byteLength > 0) {
      data = new Uint8Array(this.carry.byteLength + bytes.byteLength);
      data.set(this.carry);
      data.set(bytes, this.carry.byteLength);
    }
    const whole = data.byteLength - (data.byteLength % 4);
    // a copy when unaligned: a Float32Array needs a 4-byte aligned offset
    const aligned = data.byteOffset % 4 === 0 ? data : data.slice(0, whole);
    const values = new Float32Array(aligned.buffer, aligned.byteOffset, whole / 4);
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v - v !== 0) {
        this.found = { index: this.index + i, value: v };
        return this.found;
      }
    }
    this.index += values.length;
    this.carry = data.slice(whole);
    return null;
  }

  /** The first element that is not finite, or null; a cut element at the end is not called finite. */
  result(): NonFinite | null {
    return this.found ?? (this.carry.byteLength > 0 ? { index: this.index, value: NaN } : null);
  }
}
