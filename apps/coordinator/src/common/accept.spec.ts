import { describe, expect, it } from 'vitest';
import { negotiateMediaType } from './accept.js';

const OFFERED = ['application/json', 'text/csv'] as const;
const pick = (accept: string | undefined): string => negotiateMediaType(accept, OFFERED);

describe('negotiateMediaType', () => {
  it('answers the default without a header, for anything, and on a tie', () => {
    expect(pick(undefined)).toBe('application/json');
    expect(pick('')).toBe('application/json');
    expect(pick('*/*')).toBe('application/json');
    expect(pick('application/json, text/csv')).toBe('application/json');
    expect(pick('text/csv, application/json')).toBe('application/json');
    // what a browser sends for a page
    expect(pick('text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8')).toBe('application/json');
  });

  it('answers the type rated highest, by its most specific range', () => {
    expect(pick('text/csv')).toBe('text/csv');
    expect(pick('Text/CSV; charset=utf-8')).toBe('text/csv');
    expect(pick('text/*')).toBe('text/csv');
    expect(pick('text/csv, */*;q=0.1')).toBe('text/csv');
    expect(pick('application/json;q=0.5, text/csv;q=0.9')).toBe('text/csv');
    expect(pick('text/csv;q=0.4, application/json')).toBe('application/json');
    // text/csv;q=0 refuses CSV even though text/* would take it
    expect(pick('text/csv;q=0, text/*')).toBe('application/json');
  });

  it('ignores malformed ranges and qualities instead of failing', () => {
    expect(pick('garbage, text/csv;q=2')).toBe('application/json');
    expect(pick('text/csv;q=abc')).toBe('application/json');
    expect(pick(';;,text/csv')).toBe('text/csv');
  });
});
