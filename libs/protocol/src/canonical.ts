import { ProtocolValidationError } from './errors.js';
import { PROTOCOL_VERSION } from './constants.js';

/**
 * Domains a canonical encoding can be made for. Each has its own prefix, so bytes signed or hashed
 * as one type can never be taken for another.
 */
export const CANONICAL_DOMAINS = [
  'advert',
  'offer',
  'receipt',
  'spec',
  'inputs',
  'outputs',
  'offer-batch',
  'receipt-batch',
  'epoch',
] as const;
export type CanonicalDomain = (typeof CANONICAL_DOMAINS)[number];

/** The prefix of each domain, e.g. `gpumesh:advert:v1\n`. */
export function domainTag(domain: CanonicalDomain): string {
  return `gpumesh:${domain}:v${PROTOCOL_VERSION}\n`;
}

function nonCanonical(path: string, what: string): ProtocolValidationError {
  const message = `${what} cannot be canonically encoded`;
  return new ProtocolValidationError('NON_CANONICAL_VALUE', `canonical encoding: ${path}: ${message}`, [
    { path, message },
  ]);
}

function childPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  return path === '(root)' ? key : `${path}.${key}`;
}

/** Stands for a value canonical JSON has no encoding for (NaN, Infinity, undefined, a function, a symbol). */
const UNENCODABLE = Symbol('unencodable');

/** The JSON of a value that is not an object, UNENCODABLE, or undefined for an object (null included). */
function scalarJson(value: unknown): string | typeof UNENCODABLE | undefined {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return `"${value.toString(10)}"`;
    case 'number':
      if (!Number.isFinite(value)) return UNENCODABLE;
      return Object.is(value, -0) ? '0' : JSON.stringify(value);
    case 'object':
      return undefined;
    default:
      return UNENCODABLE;
  }
}

/** What an UNENCODABLE value is, for the error. */
function unencodable(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return 'a symbol';
  return 'undefined';
}

function encode(value: unknown, path: string, stack: Set<object>): string {
  const scalar = scalarJson(value);
  if (scalar === UNENCODABLE) throw nonCanonical(path, unencodable(value));
  if (scalar !== undefined) return scalar;
  if (value === null) return 'null';
  const obj = value as object;
  if (stack.has(obj)) throw nonCanonical(path, 'a circular reference');
  stack.add(obj);
  try {
    if (Array.isArray(obj)) {
      const parts: string[] = [];
      for (let i = 0; i < obj.length; i++) parts.push(encode(obj[i], childPath(path, i), stack));
      return `[${parts.join(',')}]`;
    }
    const proto: unknown = Object.getPrototypeOf(obj);
    if (proto !== Object.prototype && proto !== null) {
      throw nonCanonical(path, `a ${obj.constructor?.name ?? 'non-plain'} object`);
    }
    const record = obj as Record<string, unknown>;
    const keys = Object.keys(record).sort();
    const parts = keys.map((k) => `${JSON.stringify(k)}:${encode(record[k], childPath(path, k), stack)}`);
    return `{${parts.join(',')}}`;
  } finally {
    stack.delete(obj);
  }
}

/** Thrown by `encodeFast` for anything it does not encode; `encode` then says what and where. */
const NOT_FAST = Symbol('not fast');
/** Nesting past this is left to `encode` (which detects cycles; the fast path keeps no stack). */
const FAST_MAX_DEPTH = 64;

/**
 * `encode` without paths or a cycle stack: what every well-formed message takes (it is signed,
 * hashed and verified several times per job). Throws `NOT_FAST` for whatever `encode` would reject
 * and for deep nesting, so errors and cycles are reported by `encode` alone.
 */
function encodeFast(value: unknown, depth: number): string {
  const scalar = scalarJson(value);
  if (scalar === UNENCODABLE) throw NOT_FAST;
  if (scalar !== undefined) return scalar;
  if (value === null) return 'null';
  if (depth >= FAST_MAX_DEPTH) throw NOT_FAST;
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + encodeFast(value[i], depth + 1);
    return out + ']';
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) throw NOT_FAST;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    out += (i === 0 ? '' : ',') + JSON.stringify(k) + ':' + encodeFast(record[k], depth + 1);
  }
  return out + '}';
}

/**
 * Deterministic JSON: object keys sorted (UTF-16 code unit order) at every depth, no whitespace,
 * bigint as a decimal string, -0 as 0. Throws `NON_CANONICAL_VALUE` naming the path of any NaN,
 * Infinity, undefined, function, symbol, cycle or non-plain object (Date, Map, typed array...).
 */
export function canonicalJson(value: unknown): string {
  try {
    return encodeFast(value, 0);
  } catch (err) {
    if (err !== NOT_FAST) throw err;
    return encode(value, '(root)', new Set());
  }
}

/** UTF-8 bytes of `domainTag(domain) + canonicalJson(value)`: the exact bytes that are signed or hashed. */
export function canonicalBytes(domain: CanonicalDomain, value: unknown): Uint8Array {
  return Buffer.from(domainTag(domain) + canonicalJson(value), 'utf8');
}
