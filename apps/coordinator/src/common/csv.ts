/** A CSV cell: text, a number or bigint, a boolean, a date (written as ISO 8601 UTC) or empty. */
export type CsvCell = string | number | bigint | boolean | Date | null | undefined;

/** The media type of the admin exports. */
export const CSV_MEDIA_TYPE = 'text/csv';

/** A leading character a spreadsheet would read as the start of a formula. */
const FORMULA_START = /^[=+\-@\t\r]/;
const PLAIN_NUMBER = /^-?\d+(\.\d+)?$/;

/**
 * One cell as RFC 4180 wants it: quoted (with its quotes doubled) when it holds a comma, a quote or
 * a line break. Text a spreadsheet would run as a formula (`=…`, `+…`, `@…`, `-…` that is not a
 * number) gets a leading apostrophe (OWASP's CSV-injection advice), so an exported job error or
 * audit reason cannot execute in the operator's spreadsheet.
 */
export function csvCell(value: CsvCell): string {
  if (value === null || value === undefined) return '';
  if (value instanceof Date) return value.toISOString();
  if (typeof value !== 'string') return String(value);
  const text = FORMULA_START.test(value) && !PLAIN_NUMBER.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** One CSV record, CRLF-terminated (RFC 4180). */
export function csvRow(cells: readonly CsvCell[]): string {
  return `${cells.map(csvCell).join(',')}\r\n`;
}

/**
 * A CSV document as a stream of text chunks: the header, then the rows of each batch `pages` yields
 * (read lazily, so an export of any size holds one batch in memory).
 */
export async function* csvLines<T>(
  header: readonly string[],
  pages: AsyncIterable<readonly T[]>,
  toCells: (row: T) => readonly CsvCell[],
): AsyncGenerator<string> {
  yield csvRow(header);
  for await (const page of pages) {
    if (page.length > 0) yield page.map((row) => csvRow(toCells(row))).join('');
  }
}
