// Emits TypeScript types for every schema in docs/openapi.json's components.schemas.
// Deterministic: same document in, same file out. `node libs/sdk/scripts/generate.mjs` writes
// libs/sdk/src/generated.ts; `--check` exits 1 when the checked-in file is stale.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const docPath = join(here, '../../../docs/openapi.json');
const outPath = join(here, '../src/generated.ts');

export function typeOf(schema, indent = '') {
  if (schema === undefined || schema === true || Object.keys(schema).length === 0) return 'unknown';
  if (schema.$ref) return schema.$ref.split('/').pop();
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (schema.enum) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (schema.oneOf || schema.anyOf)
    return (schema.oneOf ?? schema.anyOf).map((s) => typeOf(s, indent)).join(' | ');
  if (schema.allOf) return schema.allOf.map((s) => typeOf(s, indent)).join(' & ');
  const type = schema.type;
  if (Array.isArray(type)) return type.map((t) => typeOf({ ...schema, type: t }, indent)).join(' | ');
  if (schema.nullable && type) return `${typeOf({ ...schema, nullable: false }, indent)} | null`;
  switch (type) {
    case 'string':
      return 'string';
    case 'integer':
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'null':
      return 'null';
    case 'array': {
      const item = typeOf(schema.items, indent);
      // a union or intersection of items needs parentheses: (A | B)[], not A | B[]
      const items = schema.items ?? {};
      const composite =
        items.oneOf ||
        items.anyOf ||
        items.allOf ||
        items.nullable ||
        Array.isArray(items.type) ||
        (items.enum && items.enum.length > 1);
      return composite ? `(${item})[]` : `${item}[]`;
    }
    case 'object':
    default: {
      const props = schema.properties ?? {};
      const required = new Set(schema.required ?? []);
      const inner = indent + '  ';
      const lines = Object.keys(props).map((k) => {
        const key = /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(k) ? k : JSON.stringify(k);
        const doc = props[k].description
          ? `${inner}/** ${props[k].description.replace(/\*\//g, '*\\/')} */\n`
          : '';
        return `${doc}${inner}${key}${required.has(k) ? '' : '?'}: ${typeOf(props[k], inner)};`;
      });
      const ap = schema.additionalProperties;
      if (ap && typeof ap === 'object')
        lines.push(
          `${inner}[key: string]: ${typeOf(ap, inner)}${Object.keys(props).some((k) => !required.has(k)) ? ' | undefined' : ''};`,
        );
      if (lines.length === 0) return ap === false ? 'Record<string, never>' : 'Record<string, unknown>';
      return `{\n${lines.join('\n')}\n${indent}}`;
    }
  }
}

export function generate(doc) {
  const schemas = doc.components?.schemas ?? {};
  const parts = [
    '// Generated from docs/openapi.json by libs/sdk/scripts/generate.mjs. Do not edit by hand.',
    '/* eslint-disable */',
    '',
  ];
  for (const name of Object.keys(schemas)) {
    const s = schemas[name];
    if (s.description) parts.push(`/** ${s.description.replace(/\*\//g, '*\\/')} */`);
    parts.push(`export type ${name} = ${typeOf(s)};`, '');
  }
  return parts.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const text = generate(JSON.parse(readFileSync(docPath, 'utf8')));
  if (process.argv.includes('--check')) {
    if (readFileSync(outPath, 'utf8') !== text) {
      console.error('libs/sdk/src/generated.ts is stale: run npm run sdk:generate');
      process.exit(1);
    }
  } else writeFileSync(outPath, text);
}
