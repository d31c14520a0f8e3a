import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamicList, type InventoryFormat } from './emit.js';
import { parseInventory } from './parse.js';
import { loadInventory, writeInventory } from './service.js';
import {
  ansibleInventoryList,
  canonicalFromAnsible,
  canonicalFromModel,
  canonicalFromParsed,
} from './testing/ansible.js';
import { makeTrickyLab, TRICKY } from './testing/tricky.js';

const gate = requireTestbed('inventory emitters through ansible-inventory', { commands: ['ansible-inventory'] });

describe.skipIf(gate.skip)('every format through the real ansible-inventory', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeTrickyLab('inventory-emit-');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('labctl means what the state and lab file say (model checked by hand)', async () => {
    const { inventory, warnings, skipped } = await loadInventory({ labDir: dir }, join(dir, 'kh'));
    const web1 = inventory.hosts.find((host) => host.name === 'web-01');
    expect(web1?.vars).toEqual({
      ansible_host: '192.0.2.11',
      ansible_port: 2201,
      ansible_user: 'labctl np',
      ansible_ssh_private_key_file: join(dir, 'keys/web_ed25519'),
      ansible_ssh_extra_args: '-o HostKeyAlias=web-01',
      labctl_state: 'unknown',
      ...TRICKY,
    });
    expect(inventory.hosts.find((host) => host.name === 'web-02')?.vars).toEqual({
      ansible_host: '2001:db8::2',
      ansible_ssh_private_key_file: join(dir, 'keys/web_ed25519'),
      ansible_ssh_extra_args: '-o HostKeyAlias=web-02',
      labctl_state: 'unknown',
    });
    expect(inventory.hosts.find((host) => host.name === 'db1')?.vars.ansible_ssh_private_key_file).toBe(
      join(dir, 'keys dir', 'id "x"'),
    );
    expect(skipped).toEqual([{ name: 'lost', reason: expect.stringContaining('no usable address') }]);
    expect(warnings).toEqual(
      expect.arrayContaining([
        expect.stringContaining('VM lost left out'),
        'group "web-1" is not a valid Ansible group name; written as "web_1"',
        'group "1db" is not a valid Ansible group name; written as "_db"',
        expect.stringContaining('VM web-02 has no recorded SSH host key'),
      ]),
    );
    expect(inventory.groups.map((group) => group.name)).toEqual([
      'labctl_tricky_lab',
      '_db',
      'databases',
      'frontend',
      'web_1',
    ]);
    expect(inventory.groups.find((group) => group.name === 'frontend')).toMatchObject({
      children: ['web_1'],
      vars: { tier: 'front end' },
    });
    expect(inventory.groups[0]?.vars).toMatchObject({
      ntp: 'pool.ntp.org ; fallback',
      note: 'a=b',
      labctl_lab: 'tricky-lab',
    });
    expect(inventory.knownHosts).toEqual([
      'web-01 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl',
    ]);
  });

  for (const format of ['ini', 'yaml', 'json'] as InventoryFormat[]) {
    it(`${format}: ansible-inventory --list gives back every group and every var exactly`, async () => {
      const out = join(dir, `out-${format}`, `hosts.${format === 'yaml' ? 'yml' : format}`);
      await mkdir(join(dir, `out-${format}`));
      const written = await writeInventory({ labDir: dir, format, output: out });
      const { inventory } = await loadInventory({ labDir: dir }, written.knownHostsFile);
      const found = { count: 0 };
      const seen = canonicalFromAnsible(await ansibleInventoryList(out, dir), found);
      expect(seen).toEqual(canonicalFromModel(inventory));
      // The Jinja-looking strings are marked unsafe where the format can say so: 4 of them (motd, jinja, jinja_block, nested).
      expect(found.count).toBe(format === 'ini' ? 0 : 4);
      expect(seen.groups.labctl_tricky_lab?.vars.ansible_ssh_common_args).toBe(
        `-o UserKnownHostsFile=${join(dir, `out-${format}`, 'known_hosts')} -o StrictHostKeyChecking=yes`,
      );
      // labctl's own parser reads its output the way Ansible does.
      expect(
        canonicalFromParsed(parseInventory(await readFile(out, 'utf8'), format === 'ini' ? 'ini' : 'yaml')),
      ).toEqual(seen);
    });
  }

  it('the dynamic --list answer, read as Ansible reads a script answer, is the same inventory', async () => {
    const { inventory } = await loadInventory({ labDir: dir }, join(dir, 'kh'));
    const script = join(dir, 'answer.sh');
    await writeFile(script, `#!/bin/sh\ncat '${join(dir, 'answer.json')}'\n`, { mode: 0o755 });
    await writeFile(join(dir, 'answer.json'), JSON.stringify(dynamicList(inventory)));
    const found = { count: 0 };
    expect(canonicalFromAnsible(await ansibleInventoryList(script, dir), found)).toEqual(canonicalFromModel(inventory));
    expect(found.count).toBe(4);
  });
});
