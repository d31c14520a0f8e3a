import { createHash } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { bundleProblem, readBundle } from './bundle.js';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');

const description = {
  labctlExport: 1,
  name: 'web-01',
  group: 'web',
  provider: 'libvirt',
  mac: '52:54:00:12:34:56',
  cpus: 1,
  memoryMiB: 512,
  network: 'labnet',
  options: { firmware: 'bios' },
  ssh: { user: 'root', hostKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl'] },
  files: { disk: 'disk.qcow2', definition: 'domain.xml' },
  exportedAt: '2026-11-30T10:00:00.000Z',
};

async function bundle(files: Record<string, string>, sums?: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'labctl-bundle-'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  await writeFile(
    join(dir, 'SHA256SUMS'),
    sums ??
      Object.entries(files)
        .map(([name, text]) => `${sha(text)}  ${name}\n`)
        .join(''),
  );
  return dir;
}

describe('an export bundle coming back is untrusted input', () => {
  it('a complete bundle reads back; a changed or missing file, or a bundle without SHA256SUMS, is refused (exit 2)', async () => {
    const files = { 'disk.qcow2': 'disk', 'domain.xml': '<domain/>', 'vm.json': JSON.stringify(description) };
    const good = await bundle(files);
    expect((await readBundle(good)).description.name).toBe('web-01');
    const changed = await bundle(files, `${sha('other')}  disk.qcow2\n`);
    await expect(readBundle(changed)).rejects.toMatchObject({ code: 'BUNDLE_INVALID', exitCode: 2 });
    expect(await bundleProblem(changed)).toMatch(/disk.qcow2 does not match/);
    expect(await bundleProblem(await mkdtemp(join(tmpdir(), 'labctl-empty-')))).toMatch(/no SHA256SUMS/);
  });

  it('SHA256SUMS cannot name files outside the bundle, and vm.json is checked like a lab file', async () => {
    const outside = await bundle({ 'vm.json': '{}' }, `${sha('x')}  ../../etc/passwd\n`);
    expect(await bundleProblem(outside)).toMatch(/not "SHA256  FILE"/);
    const evil = { ...description, name: 'web-01; rm -rf /', files: { disk: '../disk', definition: 'domain.xml' } };
    const bad = await bundle({ 'vm.json': JSON.stringify(evil) });
    await expect(readBundle(bad)).rejects.toMatchObject({ code: 'BUNDLE_INVALID', exitCode: 2 });
    const badNetwork = await bundle({ 'vm.json': JSON.stringify({ ...description, network: "x'/><evil" }) });
    await expect(readBundle(badNetwork)).rejects.toThrow(/network/);
  });
});
