// Generates docs/api.md from the CRD schemas in crds/: one table per object, a row per
// field, with type, default, validation and description. `--check` fails when the file
// is out of date (the unit tests run it).
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

interface Schema {
  type?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxItems?: number;
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: Schema | boolean;
  'x-kubernetes-validations'?: { rule: string; message?: string }[];
}

interface Crd {
  spec: {
    names: { kind: string; shortNames?: string[]; plural: string };
    scope: string;
    group: string;
    versions: { name: string; schema: { openAPIV3Schema: Schema } }[];
  };
}

const REPO = join(import.meta.dirname, '..');
const OUT = join(REPO, 'docs', 'api.md');

const oneLine = (s: string | undefined): string =>
  (s ?? '').replace(/\s+/g, ' ').replace(/\|/g, '\\|').trim();

function typeOf(s: Schema): string {
  if (s.type === 'array') return `[]${s.items ? typeOf(s.items) : 'any'}`;
  if (s.type === 'object' && s.additionalProperties && typeof s.additionalProperties === 'object') {
    return `map[string]${typeOf(s.additionalProperties)}`;
  }
  return s.type ?? 'any';
}

function constraints(s: Schema): string {
  const out: string[] = [];
  if (s.enum) out.push(`one of ${s.enum.map((e) => `\`${String(e)}\``).join(', ')}`);
  if (s.minimum !== undefined || s.maximum !== undefined)
    out.push(`${s.minimum ?? ''}..${s.maximum ?? ''}`);
  if (s.minLength !== undefined) out.push(`min length ${s.minLength}`);
  if (s.maxItems !== undefined) out.push(`at most ${s.maxItems} items`);
  for (const v of s['x-kubernetes-validations'] ?? []) out.push(oneLine(v.message ?? v.rule));
  return out.join('; ');
}

function rows(s: Schema, path: string, required: boolean, out: string[]): void {
  if (path !== '') {
    const def = s.default === undefined ? '' : `\`${JSON.stringify(s.default)}\``;
    out.push(
      `| \`${path}\` | ${typeOf(s)} | ${required ? 'yes' : ''} | ${def} | ${constraints(s)} | ${oneLine(s.description)} |`,
    );
  }
  const props = s.properties ?? (s.type === 'array' ? s.items?.properties : undefined);
  const req = new Set(s.required ?? (s.type === 'array' ? s.items?.required : undefined) ?? []);
  const prefix = s.type === 'array' ? `${path}[]` : path;
  for (const [name, child] of Object.entries(props ?? {})) {
    rows(child, prefix === '' ? name : `${prefix}.${name}`, req.has(name), out);
  }
}

export function render(): string {
  const parts = [
    '# API reference',
    '',
    'Generated from `crds/` by `hack/gen-api-docs.ts`; do not edit by hand.',
    '',
  ];
  for (const file of readdirSync(join(REPO, 'crds'))
    .filter((f) => f.endsWith('.yaml'))
    .sort()) {
    const crd = parse(readFileSync(join(REPO, 'crds', file), 'utf8')) as Crd;
    const { names, scope, group } = crd.spec;
    for (const version of crd.spec.versions) {
      const root = version.schema.openAPIV3Schema;
      parts.push(`## ${names.kind} (\`${group}/${version.name}\`)`, '');
      parts.push(
        `${scope}; plural \`${names.plural}\`${names.shortNames ? `, short name ${names.shortNames.map((n) => `\`${n}\``).join(', ')}` : ''}.`,
        '',
      );
      if (root.description) parts.push(oneLine(root.description), '');
      for (const section of ['spec', 'status']) {
        const schema = root.properties?.[section];
        if (!schema) continue;
        parts.push(
          `### ${section}`,
          '',
          '| field | type | required | default | validation | description |',
          '| --- | --- | --- | --- | --- | --- |',
        );
        const out: string[] = [];
        rows(schema, '', false, out);
        parts.push(...out, '');
      }
    }
  }
  return `${parts.join('\n').trimEnd()}\n`;
}

if (import.meta.main) {
  const text = render();
  if (process.argv.includes('--check')) {
    if (readFileSync(OUT, 'utf8') !== text) {
      process.stderr.write('docs/api.md is out of date: run `hack/node hack/gen-api-docs.ts`\n');
      process.exit(1);
    }
  } else {
    writeFileSync(OUT, text);
  }
}
