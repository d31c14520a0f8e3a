import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadLabFile, parseLabFile, parseSizeMiB, resolveLocalPath } from './spec.js';

describe('lab file', () => {
  it('parses groups, defaults and sizes', () => {
    const spec = parseLabFile(
      [
        'lab: demo',
        'defaults:',
        '  memory: 1G',
        '  cpus: 2',
        'groups:',
        '  web:',
        '    count: 3',
        '    memory: 512M',
      ].join('\n'),
      'labctl.yaml',
    );
    expect(spec.lab).toBe('demo');
    expect(spec.defaults?.memory).toBe(1024);
    expect(spec.groups?.web?.memory).toBe(512);
    expect(spec.groups?.web?.count).toBe(3);
  });

  it('names file, line and key path of an unknown key', () => {
    const text = ['lab: demo', 'groups:', '  web:', '    count: 2', '    memroy: 512'].join('\n');
    expect(() => parseLabFile(text, '/labs/a/labctl.yaml')).toThrow(
      '/labs/a/labctl.yaml:5: groups.web.memroy: unknown key "memroy"',
    );
  });

  it('names file, line and key path of a wrong value', () => {
    const text = ['lab: demo', 'groups:', '  web:', '    count: -1'].join('\n');
    try {
      parseLabFile(text, 'labctl.yaml');
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).toMatch(/^labctl\.yaml:4: groups\.web\.count: /);
      expect((error as { exitCode: number }).exitCode).toBe(2);
    }
  });

  it('reports YAML syntax errors with a line', () => {
    expect(() => parseLabFile('lab: demo\ngroups:\n  web: [1,\n', 'x.yaml')).toThrow(/^x\.yaml:\d+:\d+: /);
  });

  it('refuses duplicate keys instead of silently keeping the last', () => {
    expect(() => parseLabFile('lab: a\nlab: b\n', 'x.yaml')).toThrow(/x\.yaml:2/);
  });

  it('rejects a size it cannot read', () => {
    expect(() => parseLabFile('defaults:\n  memory: lots\n', 'x.yaml')).toThrow(
      /x\.yaml:2: defaults\.memory: "lots" is not a size/,
    );
    expect(parseSizeMiB('2GiB')).toBe(2048);
    expect(parseSizeMiB('128')).toBe(128);
  });

  it('works without a lab file: the lab is named after the directory; paths resolve against the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'my lab-'));
    const none = await loadLabFile(dir);
    expect(none.path).toBeUndefined();
    expect(none.lab).toMatch(/^my_lab-/);
    await writeFile(join(dir, 'labctl.yaml'), 'lab: k8s\ndefaults:\n  golden: images/golden.vhd\n');
    const loaded = await loadLabFile(dir);
    expect(loaded.lab).toBe('k8s');
    expect(loaded.resolvePath(loaded.spec.defaults!.golden!)).toBe(join(dir, 'images/golden.vhd'));
  });

  it('~ in a lab-file path is the home directory, as in the shell and ssh_config; ~user and C:\\ stay as written', () => {
    expect(resolveLocalPath('~/.ssh/lab_ed25519', '/labs/x', '/home/ann')).toBe('/home/ann/.ssh/lab_ed25519');
    expect(resolveLocalPath('~', '/labs/x', '/home/ann')).toBe('/home/ann');
    expect(resolveLocalPath('keys/id', '/labs/x', '/home/ann')).toBe('/labs/x/keys/id');
    expect(resolveLocalPath('~bob/id', '/labs/x', '/home/ann')).toBe('/labs/x/~bob/id');
    expect(resolveLocalPath('D:\\Golden\\c7.vhdx', '/labs/x', '/home/ann')).toBe('D:\\Golden\\c7.vhdx');
  });

  it('ssh.proxyJump takes what ssh -J takes, and nothing that could become another option', () => {
    for (const good of ['bastion', 'admin@bastion', 'admin@bastion:2222', 'a@j1,b@j2:22', 'ops@[2001:db8::1]:22'])
      expect(parseLabFile(`defaults:\n  ssh: { proxyJump: "${good}" }\n`, 'labctl.yaml').defaults?.ssh?.proxyJump).toBe(
        good,
      );
    for (const bad of ['-oProxyCommand=x', 'a b', 'a@b;c', 'host%h', 'a,', '"q"'])
      expect(() => parseLabFile(`defaults:\n  ssh: { proxyJump: '${bad}' }\n`, 'labctl.yaml')).toThrow(
        /ssh.proxyJump.*not a jump host list/,
      );
  });

  it('an explicit lab file that does not exist is an input error', async () => {
    await expect(loadLabFile(tmpdir(), '/nonexistent/labctl.yaml')).rejects.toMatchObject({ exitCode: 2 });
  });
});
