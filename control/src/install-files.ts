// Files shipped with syncwall (package.json, proto/, build/), found by walking
// up from this module: the same code runs from control/src (tsx) and from
// dist/control/src (compiled), so a fixed relative path would be right for
// only one of them.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function findInstallFile(relPath: string): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, relPath);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find ${relPath} above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** The checkout or install root: the directory holding syncwall's package.json. */
export const INSTALL_ROOT = dirname(findInstallFile('package.json'));

export const SYNCWALL_VERSION: string = (
  JSON.parse(readFileSync(join(INSTALL_ROOT, 'package.json'), 'utf8')) as { version: string }
).version;
