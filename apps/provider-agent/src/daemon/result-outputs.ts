// A finished job's outputs as the result frame carries them: small ones inline (base64), large ones
// by ref, after their bytes went to the coordinator as binary chunks over the artifact protocol.
import { putTensor, type GpumeshNode } from '@gpumesh/p2p';
import {
  sha256Hex,
  tensorBytes,
  type DecodedTensor,
  type ResultTensor,
  type TensorRef,
  type TensorWire,
} from '@gpumesh/protocol';

/**
 * Uploads every output the executor returned as values (larger than the agent's
 * `inlineOutputMaxBytes`) to `coordinator` with `put-tensor` and names it by ref; wire outputs stay
 * inline. The receipt's `outputHash` is the same either way (a ref's digest is its bytes' SHA-256).
 */
export async function outputsForResult(
  node: GpumeshNode,
  coordinator: string,
  outputs: readonly (TensorWire | DecodedTensor)[],
  signal: AbortSignal,
): Promise<ResultTensor[]> {
  return Promise.all(
    outputs.map(async (output): Promise<ResultTensor> => {
      if (!('values' in output)) return output;
      const bytes = tensorBytes(output);
      const sha256 = sha256Hex(bytes);
      await putTensor(node, coordinator, bytes, sha256, { signal });
      const ref: TensorRef = {
        name: output.name,
        ref: `sha256:${sha256}`,
        dtype: output.dtype,
        shape: [...output.shape],
        sha256,
      };
      return ref;
    }),
  );
}
