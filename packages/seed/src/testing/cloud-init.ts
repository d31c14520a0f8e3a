import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * cloud-init's own code for the tests, unpacked by scripts/setup.sh into .tools/cloud-init (never
 * installed as a service), run with Debian's python3. Missing: tests skip and say why; in CI that is
 * a failure.
 */
const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../../../..');
export const CLOUD_INIT_PATH = join(repoRoot, '.tools/cloud-init/usr/lib/python3/dist-packages');
export const READ_SEED_SCRIPT = join(repoRoot, 'packages/seed/src/testing/read-seed.py');
const PYTHON = '/usr/bin/python3';

function available(): string | undefined {
  if (!existsSync(join(CLOUD_INIT_PATH, 'cloudinit/__init__.py')))
    return `cloud-init's code is not in ${CLOUD_INIT_PATH} (run ./scripts/setup.sh as root)`;
  try {
    execFileSync(PYTHON, ['-c', 'import yaml, jsonschema, jinja2, configobj'], { stdio: 'ignore' });
  } catch {
    return "python3's yaml/jsonschema/jinja2/configobj modules are missing (run ./scripts/setup.sh as root)";
  }
  return undefined;
}

/** Why cloud-init cannot run here, or undefined; in CI a missing cloud-init fails the suite. */
export function cloudInitMissing(): string | undefined {
  const why = available();
  if (why && process.env.CI) throw new Error(`CI needs cloud-init for the seed tests: ${why}`);
  return why;
}

export function cloudInit(args: string[], input?: string): string {
  return execFileSync(PYTHON, args, {
    encoding: 'utf8',
    env: { ...process.env, PYTHONPATH: CLOUD_INIT_PATH, LANG: 'C.UTF-8' },
    ...(input !== undefined ? { input } : {}),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}
