import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { CANONICAL_DOMAINS, canonicalBytes, canonicalJson, domainTag } from './canonical.js';
import { ProtocolValidationError } from './errors.js';

/** Rebuilds every object with its keys in a random order. */
function shuffleKeys(value: unknown, rnd: () => number): unknown {
  if (Array.isArray(value)) return value.map((v) => shuffleKeys(v, rnd));
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value);
    for (let i = entries.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [entries[i], entries[j]] = [entries[j], entries[i]];
    }
    // fromEntries defines own properties, so a "__proto__" key stays a key.
    return Object.fromEntries(entries.map(([k, v]) => [k, shuffleKeys(v, rnd)]));
  }
  return value;
}

const jsonArb = fc.jsonValue({ maxDepth: 4 });

describe('canonicalJson', () => {
  it('is stable under key reordering at every depth (property)', () => {
    fc.assert(
      fc.property(jsonArb, fc.integer(), (value, seed) => {
        let s = seed;
        const rnd = (): number => {
          s = (s * 1103515245 + 12345) & 0x7fffffff;
          return s / 0x80000000;
        };
        expect(canonicalJson(shuffleKeys(value, rnd))).toBe(canonicalJson(value));
      }),
    );
  });

  it('is valid JSON that parses back to an equal value (property)', () => {
    fc.assert(
      fc.property(jsonArb, (value) => {
        const text = canonicalJson(value);
        expect(text).not.toMatch(/^\s|\s$/);
        expect(canonicalJson(JSON.parse(text))).toBe(text);
      }),
    );
  });

  it('sorts keys, drops whitespace and writes bigint as a decimal string', () => {
    expect(canonicalJson({ b: 1, a: [true, null, { d: 2n, c: 'x' }] })).toBe(
      '{"a":[true,null,{"c":"x","d":"2"}],"b":1}',
    );
    expect(canonicalJson(-0)).toBe('0');
    expect(canonicalJson(10n ** 30n)).toBe('"1000000000000000000000000000000"');
  });

  it.each([
    [{ a: { b: Number.NaN } }, 'a.b: NaN'],
    [{ a: [1, Number.POSITIVE_INFINITY] }, 'a[1]: Infinity'],
    [{ a: undefined }, 'a: undefined'],
    [{ f: (): number => 1 }, 'f: a function'],
    [{ d: new Date(0) }, 'd: a Date object'],
    [{ t: new Uint8Array(1) }, 't: a Uint8Array object'],
  ])('rejects %o with a clear error', (value, fragment) => {
    let err: unknown;
    try {
      canonicalJson(value);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ProtocolValidationError);
    expect((err as ProtocolValidationError).code).toBe('NON_CANONICAL_VALUE');
    expect((err as ProtocolValidationError).message).toContain(fragment);
  });

  it('rejects cycles', () => {
    const a: Record<string, unknown> = {};
    a.self = a;
    expect(() => canonicalJson(a)).toThrow(/self: a circular reference/);
  });

  it('encodes deep nesting the same as shallow (past the fast path depth)', () => {
    let deep: unknown = { leaf: [1, 'x'] };
    let expected = '{"leaf":[1,"x"]}';
    for (let i = 0; i < 100; i++) {
      deep = { z: i, a: deep };
      expected = `{"a":${expected},"z":${i}}`;
    }
    expect(canonicalJson(deep)).toBe(expected);
    expect(canonicalJson(JSON.parse(expected))).toBe(expected);
  });

  it('names the path of a bad value below the fast path depth', () => {
    let deep: unknown = { bad: Number.NaN };
    for (let i = 0; i < 80; i++) deep = [deep];
    expect(() => canonicalJson(deep)).toThrow(/\[0\]\.bad: NaN/);
  });

  it('allows the same object twice when it is not a cycle', () => {
    const shared = { x: 1 };
    expect(canonicalJson([shared, shared])).toBe('[{"x":1},{"x":1}]');
  });
});

describe('canonicalBytes', () => {
  it('prefixes a distinct domain tag per message type', () => {
    expect(domainTag('advert')).toBe('gpumesh:advert:v1\n');
    const tags = new Set(CANONICAL_DOMAINS.map(domainTag));
    expect(tags.size).toBe(CANONICAL_DOMAINS.length);
    const value = { x: 1 };
    expect(Buffer.from(canonicalBytes('offer', value)).toString('utf8')).toBe('gpumesh:offer:v1\n{"x":1}');
    expect(canonicalBytes('offer', value)).not.toEqual(canonicalBytes('receipt', value));
  });

  it('encodes as UTF-8', () => {
    expect(Array.from(canonicalBytes('spec', 'é')).slice(-3)).toEqual([0xc3, 0xa9, 0x22]);
  });
});
