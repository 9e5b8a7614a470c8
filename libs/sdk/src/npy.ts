// Tensors as NumPy `.npy` files, through the wire codec of @gpumesh/protocol: a result tensor to a
// file NumPy loads (`np.load`), and a file back to a tensor for a job spec.
import { decodeNpy, encodeNpy } from '@gpumesh/protocol/npy';
import type { TensorDto } from './generated.js';

/** The `.npy` bytes of a tensor (as results and specs carry them: little-endian, base64). */
export function toNpy(t: TensorDto): Uint8Array {
  return encodeNpy(t.dtype, t.shape, Buffer.from(t.data, 'base64'));
}

/** A tensor named `name` from `.npy` bytes (float32, int32 or bool, little-endian, C order). */
export function fromNpy(name: string, bytes: Uint8Array): TensorDto {
  const { dtype, shape, data } = decodeNpy(bytes);
  return { name, dtype, shape: [...shape], data: Buffer.from(data).toString('base64') };
}
