import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamicList, type InventoryFormat } from './emit.js';
import { parseInventory } from './parse.js';
import { loadInventory, writeInventory } from './service.js';
import { ansibleInventoryList, canonicalFromAnsible, canonicalFromModel, canonicalFromParsed } from './testing/ansible.js';

/** Values that break naive quoting in one format or another; each must come back from ansible-inventory unchanged. */
export const TRICKY: Record<string, unknown> = {
  spaces: '  two  spaces and trailing ',
  quotes: `it's "quoted" and 'single'`,
  hash: 'a # not a comment',
  equals: 'k=v=w',
  semicolon: 'a;b ; c',
  unicode: 'ünïcödé 日本語 🚀 Ωmega',
  jinja: '{{ not_a_variable }}',
  jinja_block: '{% if x %}y{% endif %} {# c #}',
  backslash: 'C:\\Users\\lab\\new',
  newline: 'line1\nline2\ttab',
  separators: 'u2028[\u2028] nel[\u0085] del[\u007f]',
  empty: '',
  looks_int: '0777',
  looks_float: '1e3',
  looks_bool: 'True',
  looks_yes: 'yes',
  looks_null: 'null',
  looks_none: 'None',
  tilde: '~',
  shellish: '$(rm -rf /) `x` | & > <',
  brackets: '[1, 2] {a: b}',
  colon_space: 'key: value',
  dash_start: '- item',
  integer: 42,
  negative: -7,
  float: 2.5,
  yes_bool: true,
  no_bool: false,
  nothing: null,
  list: ['a b', 1, { nested: "{{ x }} it's" }],
  dict: { 'key with space': 'v', n: [true, null] },
};

export function trickyLab(dir: string): { state: unknown; labFile: string } {
  return {
    state: {
      version: 1,
      lab: 'tricky-lab',
      vms: [
        {
          name: 'web-01',
          group: 'web-1',
          provider: 'manual',
          addresses: ['fe80::5', '169.254.9.9', '192.0.2.11'],
          ssh: { user: 'labctl np', port: 2201, hostKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl'] },
          vars: TRICKY,
        },
        { name: 'web-02', group: 'web-1', provider: 'manual', addresses: ['2001:db8::2'], ssh: { hostKeys: [] } },
        { name: 'db1', group: '1db', provider: 'manual', addresses: ['192.0.2.21'], ssh: { keyFile: join(dir, 'keys dir', 'id "x"') } },
        { name: 'lost', group: 'db', provider: 'manual', addresses: ['0.0.0.0', 'fe80::9'] },
      ],
    },
    labFile: [
      'lab: tricky-lab',
      'groups:',
      '  web-1:',
      '    vars: { http_port: 8080, motd: "welcome # to {{ lab }}" }',
      '    ssh: { keyFile: keys/web_ed25519 }',
      'inventory:',
      '  vars: { ntp: "pool.ntp.org ; fallback", note: "a=b" }',
      '  groups:',
      '    frontend:',
      '      children: [web-1]',
      '      vars: { tier: "front end" }',
      '    databases:',
      '      children: [1db]',
      '',
    ].join('\n'),
  };
}

export async function makeTrickyLab(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const lab = trickyLab(dir);
  await mkdir(join(dir, '.labctl'));
  await writeFile(join(dir, '.labctl', 'state.json'), JSON.stringify(lab.state));
  await writeFile(join(dir, 'labctl.yaml'), lab.labFile);
  return dir;
}

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
    expect(web1?.vars).toEqual({ ansible_host: '192.0.2.11', ansible_port: 2201, ansible_user: 'labctl np', ansible_ssh_private_key_file: join(dir, 'keys/web_ed25519'), ...TRICKY });
    expect(inventory.hosts.find((host) => host.name === 'web-02')?.vars).toEqual({ ansible_host: '2001:db8::2', ansible_ssh_private_key_file: join(dir, 'keys/web_ed25519') });
    expect(inventory.hosts.find((host) => host.name === 'db1')?.vars.ansible_ssh_private_key_file).toBe(join(dir, 'keys dir', 'id "x"'));
    expect(skipped).toEqual([{ name: 'lost', reason: expect.stringContaining('no usable address') }]);
    expect(warnings).toEqual(
      expect.arrayContaining([
        expect.stringContaining('VM lost left out'),
        'group "web-1" is not a valid Ansible group name; written as "web_1"',
        'group "1db" is not a valid Ansible group name; written as "_db"',
        expect.stringContaining('VM web-02 has no recorded SSH host key'),
      ]),
    );
    expect(inventory.groups.map((group) => group.name)).toEqual(['labctl_tricky_lab', '_db', 'databases', 'frontend', 'web_1']);
    expect(inventory.groups.find((group) => group.name === 'frontend')).toMatchObject({ children: ['web_1'], vars: { tier: 'front end' } });
    expect(inventory.groups[0]?.vars).toMatchObject({ ntp: 'pool.ntp.org ; fallback', note: 'a=b', labctl_lab: 'tricky-lab' });
    expect(inventory.knownHosts).toEqual(['[192.0.2.11]:2201 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl']);
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
      expect(canonicalFromParsed(parseInventory(await readFile(out, 'utf8'), format === 'ini' ? 'ini' : 'yaml'))).toEqual(seen);
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
