/**
 * Which form of the operator a bench starts: the compiled `dist/main.js` the image runs
 * (tsconfig.build.json, compiled here into node_modules/.cache/placement-operator beside a
 * copy of package.json, as the image lays them out), or the TypeScript source a checkout
 * runs, its types stripped at start (about 20 MiB more RSS at the envelope).
 */
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OPERATOR_SOURCE } from '../test/integration/harness.ts';
import { compileSrc } from './compile-src.ts';

export const OPERATOR_FORMS = ['built', 'source'] as const;
export type OperatorForm = (typeof OPERATOR_FORMS)[number];

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const BUILT = join(ROOT, 'node_modules/.cache/placement-operator');

let compiled: string | undefined;

/** The entry point of `form`; the first call for 'built' compiles src/ (once per process). */
export function operatorEntry(form: OperatorForm): string {
  if (form === 'source') return OPERATOR_SOURCE;
  if (compiled !== undefined) return compiled;
  compileSrc(BUILT);
  // The package's "type": "module" makes dist/*.js modules, as in the image.
  copyFileSync(join(ROOT, 'package.json'), join(BUILT, 'package.json'));
  compiled = join(BUILT, 'dist/main.js');
  return compiled;
}

/** What a bench prints about the form it runs. */
export const describeOperatorForm = (form: OperatorForm): string =>
  form === 'built'
    ? `compiled (tsconfig.build.json), as the image runs it: ${operatorEntry(form)}`
    : `from src/ (types stripped at start): ${operatorEntry(form)}`;
