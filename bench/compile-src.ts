/**
 * Compiles src/ as the package ships it (tsconfig.build.json, no source maps) into `dir`/dist,
 * emptied first: the benches run the CLI and the operator in the form users and the image
 * run, not the TypeScript source.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../', import.meta.url));

export function compileSrc(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  const tsc = spawnSync(
    process.execPath,
    [
      'node_modules/typescript/bin/tsc',
      ...['-p', 'tsconfig.build.json', '--outDir', join(dir, 'dist'), '--sourceMap', 'false'],
    ],
    { cwd: ROOT, stdio: 'inherit' },
  );
  if (tsc.status !== 0) throw new Error(`compiling src/ (tsconfig.build.json) into ${dir} failed`);
}
