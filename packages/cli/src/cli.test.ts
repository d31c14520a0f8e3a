import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { hasCommand } from '@labctl/core/testing/testbed';
import { Config } from '@oclif/core';
import { describe, expect, it } from 'vitest';

/** The built binary, as a user runs it: exit statuses, --json, --help. Needs `turbo run build` first. */
const bin = resolve(import.meta.dirname, '../bin/run.js');

async function labctl(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)('node', [bin, ...args], { env: { ...process.env, ...env } });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function labWithState(state: unknown): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'labctl-cli-'));
  await mkdir(join(dir, '.labctl'));
  await writeFile(join(dir, '.labctl', 'state.json'), JSON.stringify(state));
  return dir;
}

describe('labctl binary', () => {
  it('--help lists the commands', async () => {
    const { code, stdout } = await labctl(['--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(/USAGE\s+\$ labctl/);
    expect(stdout).toMatch(/\blist\b/);
  });

  it('read commands never make a lab: a mistyped --lab-dir (or a directory without a lab) is exit 2, nothing created', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'labctl-cli-'));
    const typo = join(parent, 'lab-typo');
    for (const args of [
      ['list'],
      ['ip'],
      ['inventory'],
      ['inventory', '--list'],
      ['ssh-config'],
      ['snapshot', 'list'],
    ]) {
      const run = await labctl([...args, '--lab-dir', typo]);
      expect([args, run.code], run.stderr).toEqual([args, 2]);
      expect(run.stderr).toMatch(/no lab in .*lab-typo: the directory does not exist\n\s+hint: .*--lab-dir/);
    }
    expect(await readdir(parent)).toEqual([]);
    const json = await labctl(['list', '--json'], { LABCTL_LAB_DIR: parent });
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout).error).toMatchObject({ code: 'LAB_NOT_FOUND' });
    expect(JSON.parse(json.stdout).error.message).toMatch(/neither labctl.yaml nor .labctl\/state.json/);
    expect(await readdir(parent)).toEqual([]);
  });

  it('list reads a hand-written state file (docs/state.md) and picks the usable address', async () => {
    const dir = await labWithState({
      version: 1,
      lab: 'handmade',
      vms: [
        { name: 'db1', group: 'db', provider: 'manual', addresses: ['fe80::1', '169.254.3.3', '192.0.2.10'] },
        { name: 'web1', group: 'web', provider: 'manual' },
      ],
    });
    const json = await labctl(['list', '--json', '--lab-dir', dir]);
    expect(json.code).toBe(0);
    const result = JSON.parse(json.stdout);
    expect(result.lab).toBe('handmade');
    expect(result.vms.map((vm: { name: string; address: string | null }) => [vm.name, vm.address])).toEqual([
      ['db1', '192.0.2.10'],
      ['web1', null],
    ]);
    const human = await labctl(['list'], { LABCTL_LAB_DIR: dir });
    // "manual" VMs have no provider to ask: their live state is unknown, and nothing is contacted.
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^NAME\s+GROUP\s+STATE\s+LIVE\s+DRIFT\s+ADDRESS/m);
    expect(human.stdout).toMatch(/^db1\s+db\s+unknown\s+unknown\s+192\.0\.2\.10/m);
    const offline = await labctl(['list', '--offline'], { LABCTL_LAB_DIR: dir });
    expect(offline.stdout).toMatch(/^db1\s+db\s+unknown\s+192\.0\.2\.10/m);
  });

  it('an unknown flag is a usage error: exit 2, one line, a hint', async () => {
    const { code, stderr } = await labctl(['list', '--no-such-flag']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^labctl: error: Nonexistent flag: --no-such-flag/m);
    expect(stderr).toMatch(/hint: See: labctl list --help/);
    expect(stderr).not.toMatch(/\s+at /); // no stack trace without --debug
  });

  it('a bad lab file is an input error naming file, line and key; --json puts it in an error object', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'labctl-cli-'));
    await writeFile(join(dir, 'labctl.yaml'), 'lab: x\ngroups:\n  web:\n    cnt: 3\n');
    const human = await labctl(['list', '--lab-dir', dir]);
    expect(human.code).toBe(2);
    expect(human.stderr).toContain(`${join(dir, 'labctl.yaml')}:4: groups.web.cnt: unknown key "cnt"`);
    const json = await labctl(['list', '--json', '--lab-dir', dir]);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout).error).toMatchObject({ code: 'LABFILE_INVALID' });
  });

  it('a corrupt state file is refused with exit 2 and a hint, and --debug adds the stack trace', async () => {
    const dir = await labWithState('not a state');
    const plain = await labctl(['list', '--lab-dir', dir]);
    expect(plain.code).toBe(2);
    expect(plain.stderr).toMatch(/does not look like a labctl state file/);
    expect(plain.stderr).toMatch(/hint: /);
    const debug = await labctl(['list', '--lab-dir', dir, '--debug']);
    expect(debug.stderr).toMatch(/\n\s+at /);
  });
});

describe('command surface', () => {
  it('matches command-snapshot.json: a renamed or dropped flag is a breaking change and must show up in review', async () => {
    const config = await Config.load(resolve(import.meta.dirname, '..'));
    const surface = config.commands
      .map((command) => ({
        command: command.id.replaceAll(':', ' '),
        flags: Object.entries(command.flags)
          .flatMap(([name, flag]) => [name, ...(flag.aliases ?? []), ...(flag.char ? [flag.char] : [])])
          .sort(),
      }))
      .sort((a, b) => a.command.localeCompare(b.command));
    // First run writes the file (outside CI); after that, update on purpose with `vitest run -u`.
    await expect(`${JSON.stringify(surface, null, 2)}\n`).toMatchFileSnapshot('../command-snapshot.json');
  });

  it('every command teaches: a summary and at least one example; every one has --json', async () => {
    const config = await Config.load(resolve(import.meta.dirname, '..'));
    for (const command of config.commands) {
      expect([command.id, Boolean(command.summary)]).toEqual([command.id, true]);
      expect([command.id, (command.examples ?? []).length > 0]).toEqual([command.id, true]);
      expect([command.id, 'json' in command.flags]).toEqual([command.id, true]);
    }
  });
});

describe('migrate and evacuate refuse before anything runs (exit 2)', () => {
  async function labFile(lines: string[]): Promise<string> {
    const dir = await labWithState({ version: 1, lab: 'm', vms: [] });
    await writeFile(join(dir, 'labctl.yaml'), lines.join('\n'));
    return dir;
  }
  const twoHosts = [
    '  - { name: h1, uri: "qemu+ssh://root@h1/system" }',
    '  - { name: h2, uri: "qemu+ssh://root@h2/system" }',
  ];

  it('a lab without two hosts, or a host the lab does not have (libvirt or Hyper-V): each named, with a hint', async () => {
    const one = await labFile(['lab: m', 'provider: libvirt', 'hosts:', twoHosts[0]!]);
    const single = await labctl(['migrate', 'web-01', '--to', 'h1', '--lab-dir', one]);
    expect(single.code).toBe(2);
    expect(single.stderr).toMatch(/moves VMs between hosts, and this lab has one host/);

    const two = await labFile(['lab: m', 'provider: libvirt', 'hosts:', ...twoHosts]);
    const unknown = await labctl(['evacuate', 'h3', '--lab-dir', two]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/HOST "h3" is not a host of this lab/);
    expect(unknown.stderr).toMatch(/Hosts: h1, h2/);

    const hyperv = await labFile([
      'lab: m',
      'provider: hyperv',
      'hosts:',
      '  - { name: hv1, address: admin@hv1 }',
      '  - { name: hv2, address: admin@hv2 }',
    ]);
    const refused = await labctl(['migrate', 'web-01', '--to', 'hv9', '--lab-dir', hyperv, '--json']);
    expect(refused.code).toBe(2);
    expect(JSON.parse(refused.stdout).error).toMatchObject({ code: 'HOST_UNKNOWN' });
  });

  it('uri: and hosts: together are refused for libvirt', async () => {
    const both = await labFile(['lab: m', 'provider: libvirt', 'uri: qemu:///system', 'hosts:', ...twoHosts]);
    const run = await labctl(['hosts', '--lab-dir', both]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/uri: and hosts: both name where libvirt runs/);
  });
});

describe('honest reads', () => {
  it.skipIf(!hasCommand('virsh'))(
    'ip with libvirt unreachable says it cannot connect (exit 1), never "no domain", and records nothing',
    async () => {
      const uri = 'qemu:///system?socket=/nonexistent/labctl-test/libvirt-sock';
      const state = {
        version: 1,
        lab: 'honest',
        vms: [
          { name: 'web-01', group: 'web', provider: 'libvirt', host: uri, state: 'running', addresses: ['192.0.2.10'] },
        ],
      };
      const dir = await labWithState(state);
      const before = await readFile(join(dir, '.labctl', 'state.json'), 'utf8');
      for (const args of [['ip'], ['ip', '--json']]) {
        const result = await labctl([...args, '--lab-dir', dir]);
        expect([args, result.code]).toEqual([args, 1]);
        const text = args.includes('--json') ? JSON.parse(result.stdout).error.message : result.stderr;
        expect(text).toMatch(/cannot connect to libvirt at qemu:\/\/\/system: .*nonexistent/);
        expect(text).not.toMatch(/no domain/);
      }
      expect(await readFile(join(dir, '.labctl', 'state.json'), 'utf8')).toBe(before);
    },
  );
});
