// Writes oclif.manifest.json after the build, as `oclif manifest` does: oclif then reads command
// metadata from one file instead of importing every command module at start-up (faster `labctl`,
// and no per-command import inside test runners).
import { writeFile, rename } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Plugin } from '@oclif/core';

const root = resolve(import.meta.dirname, '..');
const plugin = new Plugin({ root, type: 'core', isRoot: true, ignoreManifest: true, errorOnManifestCreate: true });
await plugin.load();
const manifest = plugin.manifest;
const count = Object.keys(manifest.commands).length;
if (count === 0) throw new Error('oclif found no commands in dist/commands; build first');
const target = join(root, 'oclif.manifest.json');
await writeFile(`${target}.tmp`, `${JSON.stringify(manifest, null, 2)}\n`);
await rename(`${target}.tmp`, target);
console.log(`oclif.manifest.json: ${count} commands`);
