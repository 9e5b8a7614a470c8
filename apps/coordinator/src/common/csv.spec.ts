import { describe, expect, it } from 'vitest';
import { csvCell, csvLines, csvRow } from './csv.js';

describe('csv', () => {
  it('quotes only what needs it, doubling quotes (RFC 4180)', () => {
    expect(csvCell('plain')).toBe('plain');
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('two\nlines')).toBe('"two\nlines"');
    expect(csvCell('cr\r')).toBe('"cr\r"');
    expect(csvCell('')).toBe('');
    expect(csvCell(null)).toBe('');
    expect(csvCell(undefined)).toBe('');
  });

  it('writes numbers, bigints, booleans and dates as they are', () => {
    expect(csvCell(12n ** 20n)).toBe('3833759992447475122176');
    expect(csvCell(-5)).toBe('-5');
    expect(csvCell('-5')).toBe('-5');
    expect(csvCell(true)).toBe('true');
    expect(csvCell(new Date(Date.UTC(2026, 11, 6, 18, 0, 0)))).toBe('2026-12-06T18:00:00.000Z');
  });

  it('defuses text a spreadsheet would run as a formula', () => {
    expect(csvCell('=HYPERLINK("http://x")')).toBe('"\'=HYPERLINK(""http://x"")"');
    expect(csvCell('+1+1')).toBe("'+1+1");
    expect(csvCell('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvCell('-2+3')).toBe("'-2+3");
  });

  it('ends records with CRLF and streams a header then the batches', async () => {
    expect(csvRow(['a', 1, null])).toBe('a,1,\r\n');
    async function* pages(): AsyncGenerator<number[]> {
      yield [1, 2];
      yield [];
      yield [3];
    }
    const chunks: string[] = [];
    for await (const chunk of csvLines(['n', 'double'], pages(), (n) => [n, n * 2])) chunks.push(chunk);
    expect(chunks.join('')).toBe('n,double\r\n1,2\r\n2,4\r\n3,6\r\n');
  });
});
