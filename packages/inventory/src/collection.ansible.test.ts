import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderInventory } from './service.js';
import { ansibleInventoryList, canonicalFromAnsible } from './testing/ansible.js';
import { makeTrickyLab, trickyLab } from './testing/tricky.js';

/**
 * The Ansible collection's inventory plugin (ansible/collections/ansible_collections/labctl/lab)
 * under the real ansible-inventory: on the same labs it gives what `labctl inventory` gives, with
 * no labctl process, plus Ansible's compose/groups/keyed_groups.
 */
const COLLECTIONS = fileURLToPath(new URL('../../../ansible/collections', import.meta.url));
const gate = requireTestbed('the labctl.lab inventory plugin under ansible-inventory', {
  commands: ['ansible-inventory'],
});

const inventoryOf = (source: string, tmp: string, args: string[] = ['--export']) =>
  ansibleInventoryList(source, tmp, args, { ANSIBLE_COLLECTIONS_PATH: COLLECTIONS });

describe.skipIf(gate.skip)('labctl.lab.labctl inventory plugin', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeTrickyLab('inventory-plugin-');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('gives the same groups, hosts and vars as labctl inventory, and the same known_hosts', async () => {
    const rendered = await renderInventory({ labDir: dir }, 'yaml');
    const knownHosts = await readFile(join(dir, '.labctl', 'known_hosts'), 'utf8');
    await writeFile(join(dir, 'labctl-hosts.yml'), rendered.content);
    const ours = canonicalFromAnsible(await inventoryOf(join(dir, 'labctl-hosts.yml'), dir));
    await rm(join(dir, '.labctl', 'known_hosts'));
    await writeFile(join(dir, 'lab.labctl.yml'), 'plugin: labctl.lab.labctl\n');
    const plugin = canonicalFromAnsible(await inventoryOf(join(dir, 'lab.labctl.yml'), dir));
    expect(plugin).toEqual(ours);
    expect(Object.keys(plugin.hostvars).sort()).toEqual(['db1', 'web-01', 'web-02']);
    expect(await readFile(join(dir, '.labctl', 'known_hosts'), 'utf8')).toBe(knownHosts);
    // Written only when it changes: a second run leaves the file as it was.
    const before = (await stat(join(dir, '.labctl', 'known_hosts'))).mtimeMs;
    await inventoryOf(join(dir, 'lab.labctl.yml'), dir);
    expect((await stat(join(dir, '.labctl', 'known_hosts'))).mtimeMs).toBe(before);
  });

  it("the same with stopped VMs, jump hosts and the user's own ssh args", async () => {
    const lab = trickyLab(dir);
    const state = lab.state as { vms: Array<{ name: string; state?: string; ssh?: Record<string, unknown> }> };
    state.vms.find((vm) => vm.name === 'web-02')!.state = 'stopped';
    state.vms.find((vm) => vm.name === 'db1')!.ssh!.proxyJump = 'ops@bastion:2222';
    await writeFile(join(dir, '.labctl', 'state.json'), JSON.stringify(state));
    const labFile = lab.labFile
      .replace('  vars: { ntp:', "  vars: { ansible_ssh_common_args: '-o ControlPersist=30s', ntp:")
      .replace('lab: tricky-lab\n', 'lab: tricky-lab\ndefaults:\n  ssh: { proxyJump: admin@jump }\n');
    await writeFile(join(dir, 'labctl.yaml'), labFile);
    try {
      const rendered = await renderInventory({ labDir: dir }, 'yaml');
      await writeFile(join(dir, 'labctl-hosts.yml'), rendered.content);
      const ours = canonicalFromAnsible(await inventoryOf(join(dir, 'labctl-hosts.yml'), dir));
      await writeFile(join(dir, 'lab.labctl.yml'), 'plugin: labctl.lab.labctl\n');
      const plugin = canonicalFromAnsible(await inventoryOf(join(dir, 'lab.labctl.yml'), dir));
      expect(plugin).toEqual(ours);
      expect(plugin.groups.labctl_stopped?.hosts).toEqual(['web-02']);
      expect(plugin.hostvars.db1?.ansible_ssh_extra_args).toBe('-o HostKeyAlias=db1 -o ProxyJump=ops@bastion:2222');
      expect(plugin.hostvars['web-01']?.ansible_ssh_extra_args).toBe('-o HostKeyAlias=web-01 -o ProxyJump=admin@jump');
      expect(plugin.groups.labctl_tricky_lab?.vars.ansible_ssh_common_args).toMatch(
        /^-o ControlPersist=30s -o UserKnownHostsFile=.* -o StrictHostKeyChecking=yes$/,
      );
    } finally {
      await writeFile(join(dir, '.labctl', 'state.json'), JSON.stringify(lab.state));
      await writeFile(join(dir, 'labctl.yaml'), lab.labFile);
    }
  });

  it('lab_dir from elsewhere, compose, groups and keyed_groups as in Ansible plugins; stopped VMs apart', async () => {
    const state = trickyLab(dir).state as { vms: Array<{ name: string; state?: string }> };
    state.vms.find((vm) => vm.name === 'web-02')!.state = 'stopped';
    state.vms.find((vm) => vm.name === 'web-01')!.state = 'running';
    await writeFile(join(dir, '.labctl', 'state.json'), JSON.stringify(state));
    try {
      const elsewhere = join(dir, 'elsewhere');
      await mkdir(elsewhere, { recursive: true });
      await writeFile(
        join(elsewhere, 'prod.labctl.yaml'),
        [
          'plugin: labctl.lab.labctl',
          'lab_dir: ..',
          'compose:',
          "  role: \"'frontend' if 'web_1' in group_names else 'backend'\"",
          'groups:',
          "  reachable: labctl_state != 'stopped'",
          'keyed_groups:',
          '  - key: labctl_state',
          '    prefix: state',
          '',
        ].join('\n'),
      );
      const list = await inventoryOf(join(elsewhere, 'prod.labctl.yaml'), dir, []);
      const seen = canonicalFromAnsible(list);
      expect(seen.groups.web_1?.hosts).toEqual(['web-01']);
      expect(seen.groups.labctl_stopped?.hosts).toEqual(['web-02']);
      expect(seen.groups.reachable?.hosts).toEqual(['db1', 'web-01']);
      expect(seen.groups.state_running?.hosts).toEqual(['web-01']);
      expect(seen.groups.state_stopped?.hosts).toEqual(['web-02']);
      expect(seen.hostvars['web-01']?.role).toBe('frontend');
      expect(seen.hostvars.db1?.role).toBe('backend');
    } finally {
      await writeFile(join(dir, '.labctl', 'state.json'), JSON.stringify(trickyLab(dir).state));
    }
  });

  it('a directory with no lab fails the run with the reason', async () => {
    const empty = join(dir, 'no-lab');
    await mkdir(empty, { recursive: true });
    await writeFile(join(empty, 'x.labctl.yml'), 'plugin: labctl.lab.labctl\n');
    const failed = await inventoryOf(join(empty, 'x.labctl.yml'), dir).catch((error: { stderr: string }) => error);
    // Ansible wraps its warnings to 80 columns.
    expect((failed as { stderr: string }).stderr.replace(/\s+/g, ' ')).toMatch(
      /no lab in \S*no-lab: it has no \.labctl\/state\.json/,
    );
  });
});
