import { z } from 'zod';

import { parseWith, safeParseWith, type SafeParseResult } from './validation.js';

/** tfjs backends a provider can run on, best first. */
export const BACKENDS = ['tensorflow-gpu', 'webgpu', 'tensorflow', 'wasm', 'cpu'] as const;

export const BackendSchema = z.enum(BACKENDS, { error: `expected one of ${BACKENDS.join(', ')}` });

export type Backend = z.output<typeof BackendSchema>;

export function parseBackend(input: unknown): Backend {
  return parseWith('Backend', BackendSchema, input);
}

export function safeParseBackend(input: unknown): SafeParseResult<Backend> {
  return safeParseWith('Backend', BackendSchema, input);
}

/** Rank of a backend in `BACKENDS` (0 = best); useful for sorting. */
export function backendRank(backend: Backend): number {
  return BACKENDS.indexOf(backend);
}
