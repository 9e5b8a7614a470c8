import { z } from 'zod';

import { ProtocolValidationError, type ValidationErrorCode, type ValidationIssue } from './errors.js';

/** Result of a non-throwing parse. */
export type SafeParseResult<T> =
  | { readonly success: true; readonly data: T }
  | { readonly success: false; readonly error: ProtocolValidationError };

/** Renders a zod path as `spec.inputs[0].shape`; the empty path is `(root)`. */
export function formatIssuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else out += out === '' ? String(segment) : `.${String(segment)}`;
  }
  return out === '' ? '(root)' : out;
}

type ZodIssue = z.ZodError['issues'][number];

/**
 * `issues` with every failed union replaced by the issues of its closest branch (the one with the
 * fewest, the first on a tie), paths made absolute: an inline tensor with bad base64 reports its
 * `data`, not that it is not a tensor by ref either.
 */
function flattenUnions(issues: readonly ZodIssue[]): ZodIssue[] {
  const out: ZodIssue[] = [];
  for (const issue of issues) {
    if (issue.code !== 'invalid_union' || issue.errors.length === 0) {
      out.push(issue);
      continue;
    }
    const branches = issue.errors.map((branch) => flattenUnions(branch));
    const closest = branches.reduce((best, b) => (b.length < best.length ? b : best));
    if (closest.length === 0) {
      out.push(issue);
      continue;
    }
    for (const sub of closest) out.push({ ...sub, path: [...issue.path, ...sub.path] } as ZodIssue);
  }
  return out;
}

function toIssues(error: z.ZodError): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  for (const issue of flattenUnions(error.issues)) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        issues.push({ path: formatIssuePath([...issue.path, key]), message: 'unknown field' });
      }
      continue;
    }
    issues.push({ path: formatIssuePath(issue.path), message: issue.message });
  }
  return issues;
}

/** Builds the error thrown for a failed parse, naming every bad field in its message. */
export function validationErrorFromIssues(
  what: string,
  issues: readonly ValidationIssue[],
  code: ValidationErrorCode = 'INVALID_MESSAGE',
): ProtocolValidationError {
  const detail = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
  return new ProtocolValidationError(code, `invalid ${what}: ${detail}`, issues);
}

/** Converts a zod failure into a `ProtocolValidationError`. */
export function fromZodError(what: string, error: z.ZodError): ProtocolValidationError {
  const issues = toIssues(error);
  return validationErrorFromIssues(what, issues, issueCode(error));
}

/** Codes a custom issue may carry in `params.code` to name its failure more precisely. */
const SPECIFIC_CODES: readonly ValidationErrorCode[] = ['TENSOR_TOO_LARGE', 'ADVERT_OUT_OF_RANGE'];

/** The first specific code a custom issue carries (see SPECIFIC_CODES), else INVALID_MESSAGE. */
function issueCode(error: z.ZodError): ValidationErrorCode {
  for (const issue of flattenUnions(error.issues)) {
    if (issue.code !== 'custom') continue;
    const code = (issue.params as { code?: unknown } | undefined)?.code;
    const specific = SPECIFIC_CODES.find((c) => c === code);
    if (specific) return specific;
  }
  return 'INVALID_MESSAGE';
}

/** Non-throwing parse of `input` against `schema`. */
export function safeParseWith<S extends z.ZodType>(
  what: string,
  schema: S,
  input: unknown,
): SafeParseResult<z.output<S>> {
  const result = schema.safeParse(input);
  if (result.success) return { success: true, data: result.data };
  return { success: false, error: fromZodError(what, result.error) };
}

/** Throwing parse of `input` against `schema`. */
export function parseWith<S extends z.ZodType>(what: string, schema: S, input: unknown): z.output<S> {
  const result = safeParseWith(what, schema, input);
  if (!result.success) throw result.error;
  return result.data;
}
