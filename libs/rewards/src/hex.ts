/** 0x-prefixed lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  return `0x${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')}`;
}

/** Bytes of a 0x-prefixed (or bare) hex string; throws on odd length or a non-hex digit. */
export function fromHex(hex: string): Uint8Array {
  const body = hex.startsWith('0x') || hex.startsWith('0X') ? hex.slice(2) : hex;
  if (body.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(body)) throw new Error(`invalid hex: ${hex}`);
  return new Uint8Array(Buffer.from(body, 'hex'));
}

/** True when `hex` is a 0x-prefixed 32-byte value. */
export function isBytes32(hex: string): boolean {
  return /^0x[0-9a-fA-F]{64}$/.test(hex);
}
