import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { loadInventory } from '@labctl/inventory/service';
import { ansibleInventoryList, canonicalFromAnsible, canonicalFromModel } from '@labctl/inventory/testing/ansible';
import { makeTrickyLab } from '@labctl/inventory/testing/tricky';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** `labctl inventory` as a user runs it: the built binary, exit statuses, --json, and script mode through ansible-inventory. */
const bin = resolve(import.meta.dirname, '../../bin/run.js');

async function labctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)('node', [bin, ...args], { maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

// Each case starts the binary a few times; on a loaded 2-core machine that is seconds per start.
describe('labctl inventory (built binary)', { timeout: 90_000 }, () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeTrickyLab('labctl-cli-inventory-');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('--help teaches with examples', async () => {
    const { code, stdout } = await labctl(['inventory', '--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/--format=<option>/);
    expect(stdout).toMatch(/EXAMPLES/);
    expect(stdout).toMatch(/--merge/);
  });

  it('writes a file, reports it with --json, and refuses (exit 2) to replace a hand-written file', async () => {
    const out = join(dir, 'hosts.yml');
    const written = await labctl(['inventory', '--lab-dir', dir, '-f', 'yaml', '-o', out, '--json']);
    expect(written.code).toBe(0);
    const result = JSON.parse(written.stdout);
    expect(result).toMatchObject({
      mode: 'file',
      format: 'yaml',
      output: out,
      knownHostsFile: join(dir, 'known_hosts'),
      hosts: 3,
      lab: 'tricky-lab',
    });
    expect(result.skipped).toEqual([{ name: 'lost', reason: expect.stringContaining('no usable address') }]);
    expect(result.warnings).toContain('group "web-1" is not a valid Ansible group name; written as "web_1"');

    const mine = join(dir, 'mine.ini');
    await writeFile(mine, '[mine]\nhost1\n');
    const refused = await labctl(['inventory', '--lab-dir', dir, '-o', mine]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/labctl: error: .*mine\.ini exists and was not written by labctl/);
    expect(refused.stderr).toMatch(/hint: Pass --force/);
    expect(await readFile(mine, 'utf8')).toBe('[mine]\nhost1\n');
    const refusedJson = await labctl(['inventory', '--lab-dir', dir, '-o', mine, '--json']);
    expect(JSON.parse(refusedJson.stdout).error.code).toBe('INVENTORY_NOT_OURS');
  });

  it('stdout mode prints the inventory and warns on stderr', async () => {
    const { code, stdout, stderr } = await labctl(['inventory', '--lab-dir', dir]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^# Ansible inventory written by labctl inventory/);
    expect(stdout).toMatch(/^\[web_1\]$/m);
    expect(stderr).toMatch(/warning: VM lost left out/);
    expect(stderr).toMatch(/INI cannot mark them unsafe/);
  });

  it('--list and --host answer the dynamic-inventory protocol', async () => {
    const list = await labctl(['inventory', '--lab-dir', dir, '--list']);
    expect(list.code).toBe(0);
    const answer = JSON.parse(list.stdout);
    expect(Object.keys(answer._meta.hostvars).sort()).toEqual(['db1', 'web-01', 'web-02']);
    expect(answer.web_1.hosts).toEqual(['web-01', 'web-02']);
    // Ansible shows a dynamic inventory's stderr in every run: the lab's warnings (a VM without an
    // address) stay out of it, and come with --debug.
    expect(list.stderr).toBe('');
    const debug = await labctl(['inventory', '--lab-dir', dir, '--list', '--debug']);
    expect(debug.stderr).toMatch(/warning: VM lost left out/);
    const host = await labctl(['inventory', '--lab-dir', dir, '--host', 'web-01']);
    expect(JSON.parse(host.stdout)).toEqual(answer._meta.hostvars['web-01']);
    expect(JSON.parse((await labctl(['inventory', '--lab-dir', dir, '--host', 'nope'])).stdout)).toEqual({});
    const clash = await labctl(['inventory', '--lab-dir', dir, '--list', '-o', 'x']);
    expect(clash.code).toBe(2);
  });

  const gate = requireTestbed('labctl inventory --script through ansible-inventory', {
    commands: ['ansible-inventory'],
  });
  it.skipIf(gate.skip)('--script writes an executable that ansible-inventory reads as the same inventory', async () => {
    const scriptDir = join(dir, 'scripts');
    await mkdir(scriptDir);
    const script = join(scriptDir, 'lab inventory.sh');
    const { code, stdout } = await labctl(['inventory', '--lab-dir', dir, '--script', script, '--json']);
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ mode: 'script', script, labDir: dir });
    expect((await stat(script)).mode & 0o111).toBe(0o111);
    const { inventory } = await loadInventory({ labDir: dir }, join(dir, '.labctl', 'known_hosts'));
    const found = { count: 0 };
    expect(canonicalFromAnsible(await ansibleInventoryList(script, dir), found)).toEqual(canonicalFromModel(inventory));
    expect(found.count).toBe(4);
    expect(await readFile(join(dir, '.labctl', 'known_hosts'), 'utf8')).toMatch(/^web-01 ssh-ed25519 /m);
  });
});
