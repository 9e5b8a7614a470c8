import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain .mjs script without types
import { generate } from '../scripts/generate.mjs';

describe('generated types', () => {
  it('are current with docs/openapi.json (run npm run sdk:generate)', () => {
    const doc: unknown = JSON.parse(
      readFileSync(new URL('../../../docs/openapi.json', import.meta.url), 'utf8'),
    );
    expect(readFileSync(new URL('./generated.ts', import.meta.url), 'utf8')).toBe(
      (generate as (d: unknown) => string)(doc),
    );
  });
});
