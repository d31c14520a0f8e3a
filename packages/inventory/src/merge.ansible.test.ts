import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabctlError } from '@labctl/core/errors';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadInventory, mergeInventory, writeInventory } from './service.js';
import { ansibleInventoryList, canonicalFromAnsible, canonicalFromModel } from './testing/ansible.js';
import { makeTrickyLab, trickyLab } from './testing/tricky.js';

const HAND_INI = `# my own hosts, kept by labctl --merge
legacy.example.com ansible_user=root

[monitoring]
prom1 ansible_host=192.0.2.99 note="hand # written"

[monitoring:vars]
retention=30d
`;

const HAND_YAML = `# hand-written YAML inventory
all:
  vars:
    owner: me
  children:
    monitoring:
      hosts:
        prom1: {ansible_host: 192.0.2.99, note: "hand # written"}
`;

async function expectRefused(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(LabctlError);
  expect((err as LabctlError).code).toBe(code);
  expect((err as LabctlError).exitCode).toBe(2);
}

const gate = requireTestbed('inventory --merge through ansible-inventory', { commands: ['ansible-inventory'] });

describe.skipIf(gate.skip)("--merge keeps what the user wrote and replaces only labctl's block", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeTrickyLab('inventory-merge-');
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const [format, name, hand] of [
    ['ini', 'hosts', HAND_INI],
    ['yaml', 'hosts.yml', HAND_YAML],
  ] as const) {
    it(`${format}: hand-written part byte for byte, labctl's part var for var, and a second merge replaces the block`, async () => {
      const sub = join(dir, `merge-${format}`);
      await mkdir(sub);
      const file = join(sub, name);
      await writeFile(file, hand);
      const handView = canonicalFromAnsible(await ansibleInventoryList(file, dir));

      const first = await mergeInventory({ labDir: dir, existing: file });
      expect(first.format).toBe(format);
      expect(first.appended).toBe(true);
      const merged = await readFile(file, 'utf8');
      expect(merged.startsWith(hand)).toBe(true);

      const { inventory } = await loadInventory({ labDir: dir }, first.knownHostsFile);
      const ours = canonicalFromModel(inventory);
      const seen = canonicalFromAnsible(await ansibleInventoryList(file, dir));
      for (const [host, vars] of Object.entries(ours.hostvars)) expect(seen.hostvars[host]).toEqual(vars);
      for (const [host, vars] of Object.entries(handView.hostvars)) expect(seen.hostvars[host]).toEqual(vars);
      for (const [group, body] of Object.entries(ours.groups)) {
        if (group === 'all') continue;
        expect(seen.groups[group]?.vars).toEqual(body.vars);
        expect(seen.groups[group]?.hosts).toEqual(expect.arrayContaining(body.hosts));
      }
      for (const [group, body] of Object.entries(handView.groups)) {
        expect(seen.groups[group]?.hosts).toEqual(expect.arrayContaining(body.hosts));
        if (group !== 'all') expect(seen.groups[group]?.vars).toEqual(expect.objectContaining(body.vars));
      }
      expect(seen.groups.all?.vars ?? {}).toEqual(handView.groups.all?.vars ?? {});

      // The lab changes (web-02 is gone), the user adds a line after the block: merge again.
      const state = trickyLab(dir).state as { vms: Array<{ name: string }> };
      state.vms = state.vms.filter((vm) => vm.name !== 'web-02');
      await writeFile(join(dir, '.labctl', 'state.json'), JSON.stringify(state));
      const trailer = format === 'ini' ? '\n[late]\nlate-host\n' : '\nlate:\n  hosts:\n    late-host:\n';
      await writeFile(file, merged + trailer);
      try {
        const second = await mergeInventory({ labDir: dir, existing: file });
        expect(second.appended).toBe(false);
        const again = await readFile(file, 'utf8');
        expect(again.startsWith(hand)).toBe(true);
        expect(again.endsWith(trailer)).toBe(true);
        expect(again.match(/# BEGIN labctl managed block/g)).toHaveLength(1);
        const after = canonicalFromAnsible(await ansibleInventoryList(file, dir));
        expect(after.groups.web_1?.hosts).toEqual(['web-01']);
        expect(after.groups.late?.hosts).toEqual(['late-host']);
      } finally {
        await writeFile(join(dir, '.labctl', 'state.json'), JSON.stringify(trickyLab(dir).state));
      }
    });
  }

  it("a [group:vars] the user adds after labctl's block, for one of labctl's groups, merges as Ansible reads it", async () => {
    const sub = join(dir, 'merge-vars-after');
    await mkdir(sub);
    const file = join(sub, 'hosts');
    await writeInventory({ labDir: dir, output: file, format: 'ini' });
    const trailer = '\n[web_1:vars]\nowner=ops team\n';
    await writeFile(file, (await readFile(file, 'utf8')) + trailer);
    const merged = await mergeInventory({ labDir: dir, existing: file });
    expect(merged.appended).toBe(false);
    const text = await readFile(file, 'utf8');
    expect(text.endsWith(trailer)).toBe(true);
    const seen = canonicalFromAnsible(await ansibleInventoryList(file, dir));
    expect(seen.groups.web_1?.vars).toMatchObject({ owner: 'ops team', http_port: 8080 });
    expect(seen.groups.web_1?.hosts).toEqual(['web-01', 'web-02']);
  });

  it("refuses to move hand-written hosts under labctl's group of the same name, and leaves the file and its mode as they were", async () => {
    const sub = join(dir, 'merge-clash');
    await mkdir(sub);
    const file = join(sub, 'hosts');
    const hand = '[web_1]\nextra-web ansible_host=192.0.2.98\n';
    await writeFile(file, hand, { mode: 0o600 });
    await expectRefused(mergeInventory({ labDir: dir, existing: file }), 'INVENTORY_MERGE_GROUP');
    expect(await readFile(file, 'utf8')).toBe(hand);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('refuses, before writing anything, a block without its END marker, a YAML file that already has the root group, a format mismatch and JSON', async () => {
    const broken = join(dir, 'broken.ini');
    const text = `${HAND_INI}# BEGIN labctl managed block (lab tricky-lab)\n[web_1]\nweb-01\n`;
    await writeFile(broken, text);
    await expectRefused(mergeInventory({ labDir: dir, existing: broken }), 'INVENTORY_MERGE');
    expect(await readFile(broken, 'utf8')).toBe(text);

    const clash = join(dir, 'clash.yml');
    await writeFile(clash, 'labctl_tricky_lab:\n  hosts:\n    mine:\n');
    await expectRefused(mergeInventory({ labDir: dir, existing: clash }), 'INVENTORY_MERGE');

    await expectRefused(
      mergeInventory({ labDir: dir, existing: join(dir, 'merge-ini', 'hosts'), format: 'yaml' }),
      'INVENTORY_MERGE_FORMAT',
    );
    await expectRefused(mergeInventory({ labDir: dir, existing: join(dir, 'theirs.json') }), 'INVENTORY_MERGE_FORMAT');
  });

  it('-o refuses to replace a file (or known_hosts) labctl did not write, unless --force; its own files it replaces', async () => {
    const sub = join(dir, 'own');
    await mkdir(sub);
    const target = join(sub, 'inventory.ini');
    await writeFile(target, HAND_INI);
    await expectRefused(writeInventory({ labDir: dir, format: 'ini', output: target }), 'INVENTORY_NOT_OURS');
    expect(await readFile(target, 'utf8')).toBe(HAND_INI);

    await writeInventory({ labDir: dir, format: 'ini', output: target, force: true });
    await writeInventory({ labDir: dir, format: 'json', output: target });
    await writeInventory({ labDir: dir, format: 'yaml', output: target });
    expect(await readFile(target, 'utf8')).toMatch(/^# Ansible inventory written by labctl inventory/);

    const json = join(sub, 'inventory.json');
    await writeInventory({ labDir: dir, format: 'json', output: json });
    await writeInventory({ labDir: dir, format: 'json', output: json }); // a JSON file is recognised by its labctl_lab var

    const other = join(dir, 'other');
    await mkdir(other);
    await writeFile(join(other, 'known_hosts'), 'myhost ssh-ed25519 AAAA\n');
    await expectRefused(
      writeInventory({ labDir: dir, format: 'ini', output: join(other, 'hosts') }),
      'INVENTORY_NOT_OURS',
    );
    expect(await readFile(join(other, 'known_hosts'), 'utf8')).toBe('myhost ssh-ed25519 AAAA\n');
  });
});
