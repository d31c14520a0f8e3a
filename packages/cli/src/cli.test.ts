import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, realpath, symlink, writeFile } from 'node:fs/promises';
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
    // What they print is for a person (help) or a shell (completion scripts and candidates).
    const textOnly = new Set(['help', 'completion', 'complete']);
    for (const command of config.commands) {
      expect([command.id, Boolean(command.summary)]).toEqual([command.id, true]);
      if (command.hidden) continue;
      expect([command.id, (command.examples ?? []).length > 0]).toEqual([command.id, true]);
      if (!textOnly.has(command.id)) expect([command.id, 'json' in command.flags]).toEqual([command.id, true]);
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

describe('oclif conventions', () => {
  it('an unknown command is exit 2 with a did-you-mean (never run); --json gives the error envelope', async () => {
    const human = await labctl(['lsit']);
    expect(human.code).toBe(2);
    expect(human.stderr).toBe(
      'labctl: error: lsit is not a labctl command\n  hint: Did you mean: labctl list? Run labctl help for the commands.\n',
    );
    const topic = await labctl(['snapshot', 'lsit']);
    expect(topic.stderr).toMatch(/snapshot lsit is not a labctl command\n.*Did you mean: labctl snapshot list\?/);
    const json = await labctl(['detsroy', '--all', '--json']);
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stdout)).toEqual({
      error: {
        code: 'COMMAND_NOT_FOUND',
        message: 'detsroy is not a labctl command',
        hint: 'Did you mean: labctl destroy? Run labctl help for the commands.',
      },
    });
    const far = await labctl(['frobnicate']);
    expect(far.stderr).toMatch(/frobnicate is not a labctl command\n  hint: Run labctl help for the commands\.\n$/);
  });

  it('a mistyped flag names the flag it probably was', async () => {
    const run = await labctl(['create', '--cont', '3']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/Nonexistent flag: --cont\n\s+hint: Did you mean --count\? See: labctl create --help/);
  });

  it('-h, labctl help CMD, labctl version and -v', async () => {
    const short = await labctl(['snapshot', 'save', '-h']);
    const long = await labctl(['help', 'snapshot', 'save']);
    expect(short.code).toBe(0);
    expect(long.stdout).toBe(short.stdout);
    expect(short.stdout).toMatch(/USAGE\s+\$ labctl snapshot save/);
    const version = await labctl(['version', '--json']);
    expect(JSON.parse(version.stdout)).toEqual({
      version: expect.stringMatching(/^\d+\.\d+\.\d+/),
      node: process.version,
      platform: process.platform,
      arch: process.arch,
    });
    expect((await labctl(['-v'])).stdout).toMatch(/^@labctl\/cli\/\d+\.\d+\.\d+ /);
  });

  it('help wraps descriptions to the terminal, not at the source lines', async () => {
    // OCLIF_COLUMNS stands in for the terminal's width (a pipe has none).
    const narrow = await labctl(['create', '--help'], { OCLIF_COLUMNS: '60' });
    const wide = await labctl(['create', '--help'], { OCLIF_COLUMNS: '200' });
    const description = (text: string) => text.split('DESCRIPTION')[1]!.split('EXAMPLES')[0]!;
    expect(
      Math.max(
        ...description(narrow.stdout)
          .split('\n')
          .map((line) => line.length),
      ),
    ).toBeLessThanOrEqual(60);
    // Wider than the source's 120-column lines when the terminal is: the source's line breaks do not show.
    const wideLines = description(wide.stdout)
      .split('\n')
      .map((line) => line.length);
    expect(Math.max(...wideLines)).toBeGreaterThan(150);
    expect(Math.max(...wideLines)).toBeLessThanOrEqual(200);
  });

  it('init writes a commented lab file that plans as it stands, for each provider, and never replaces one', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'labctl-init-'));
    for (const provider of ['libvirt', 'hyperv']) {
      const dir = join(parent, provider);
      const init = await labctl(['init', '--provider', provider, '--lab-dir', dir, '--json']);
      expect(init.code, init.stderr).toBe(0);
      expect(JSON.parse(init.stdout)).toEqual({ file: join(dir, 'labctl.yaml'), lab: provider, provider });
      const text = await readFile(join(dir, 'labctl.yaml'), 'utf8');
      expect(text).toMatch(new RegExp(`^provider: ${provider}$`, 'm'));
      expect(text.split('\n').filter((line) => line.includes('#')).length).toBeGreaterThan(8);
      const plan = await labctl(['create', '--dry-run', '--offline', '--json', '--lab-dir', dir]);
      expect(plan.code, plan.stderr).toBe(0);
      expect(JSON.parse(plan.stdout).plan.vms.map((vm: { name: string }) => vm.name)).toEqual(['web-01', 'web-02']);
      await writeFile(join(dir, 'labctl.yaml'), 'lab: mine\n');
      const again = await labctl(['init', '--provider', provider, '--lab-dir', dir]);
      expect(again.code).toBe(2);
      expect(again.stderr).toMatch(/labctl.yaml exists; labctl init does not replace a lab file\n\s+hint: .*--force/);
      expect(await readFile(join(dir, 'labctl.yaml'), 'utf8')).toBe('lab: mine\n');
    }
  });

  it.skipIf(!hasCommand('script'))(
    'destroy --all asks on a terminal; no keeps everything; --yes and pipes do not ask',
    async () => {
      const dir = await labWithState({
        version: 1,
        lab: 'asked',
        vms: [{ name: 'web-01', group: 'web', provider: 'manual' }],
      });
      const before = await readFile(join(dir, '.labctl', 'state.json'), 'utf8');
      // util-linux script(1) gives labctl a terminal; the answer comes through it.
      const onTty = await promisify(execFile)(
        'sh',
        ['-c', 'printf "n\\n" | script -qec "$0" /dev/null', `node ${bin} destroy --all --lab-dir ${dir}`],
        { env: { ...process.env } },
      ).catch((error: { stdout: string; code: number }) => error);
      expect(onTty.stdout).toMatch(/Destroy every VM of lab "labctl-cli-\w+" \(1: web-01\) and their disks\? \[y\/N\]/);
      expect(onTty.stdout).toMatch(/Nothing destroyed\./);
      expect(await readFile(join(dir, '.labctl', 'state.json'), 'utf8')).toBe(before);
      const piped = await labctl(['destroy', '--all', '--lab-dir', dir]);
      expect(piped.stderr + piped.stdout).not.toMatch(/\[y\/N\]/);
    },
  );

  describe("shell completion: commands, flags, flag values and the lab's VM names", () => {
    const complete = async (words: string[], env: NodeJS.ProcessEnv = {}) =>
      (await labctl(['complete', '--', ...words], env)).stdout.split('\n').filter(Boolean);
    /** A PATH where `labctl` is this build, as after scripts/setup.sh. */
    const onPath = async () => {
      const dir = await mkdtemp(join(tmpdir(), 'labctl-path-'));
      await symlink(bin, join(dir, 'labctl'));
      return `${dir}:${process.env.PATH}`;
    };
    const lab = () =>
      labWithState({
        version: 1,
        lab: 'tabs',
        vms: ['web-01', 'web-02', 'db-01'].map((name) => ({ name, group: name.slice(0, -3), provider: 'manual' })),
      });

    it('labctl complete answers for the last word', async () => {
      expect(await complete(['snap'])).toEqual(['snapshot']);
      expect(await complete(['snapshot', ''])).toEqual(['delete', 'list', 'revert', 'save']);
      expect(await complete(['destroy', '--a'])).toEqual(['--all']);
      expect(await complete(['create', '--provider', ''])).toEqual(['libvirt', 'hyperv']);
      expect(await complete(['create', '--no-w'])).toEqual(['--no-wait']);
      const dir = await lab();
      expect(await complete(['ssh', ''], { LABCTL_LAB_DIR: dir })).toEqual(['db-01', 'web-01', 'web-02']);
      expect(await complete(['snapshot', 'save', '--lab-dir', dir, 'web'])).toEqual(['web-01', 'web-02']);
      // A typed --help is a word being completed, not a request for help (no help text comes back).
      expect(await complete(['destroy', '--help'])).toEqual([]);
    });

    it('bash: the script completes through labctl, and falls back to file names', async () => {
      const dir = await lab();
      const script = (await labctl(['completion', 'bash'])).stdout;
      const run = async (line: string[]) => {
        const { stdout } = await promisify(execFile)(
          'bash',
          [
            '-c',
            `eval "$SCRIPT"; COMP_WORDS=(${line.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=$((\${#COMP_WORDS[@]} - 1)); _labctl; printf '%s\\n' "\${COMPREPLY[@]}"`,
          ],
          { env: { ...process.env, SCRIPT: script, PATH: await onPath(), LABCTL_LAB_DIR: dir }, cwd: dir },
        );
        return stdout.split('\n').filter(Boolean);
      };
      expect(await run(['labctl', 'st'])).toEqual(['start', 'status', 'stop']);
      expect(await run(['labctl', 'stop', 'w'])).toEqual(['web-01', 'web-02']);
      expect(script).toMatch(/complete -o default -F _labctl labctl/);
    });

    it.skipIf(!hasCommand('zsh'))(
      'zsh: the function offers what labctl answers (compadd), files otherwise',
      async () => {
        const dir = await lab();
        const script = (await labctl(['completion', 'zsh'])).stdout;
        const { stdout } = await promisify(execFile)(
          'zsh',
          [
            '-c',
            // The completion system's builtins are stood in for: the function itself runs under zsh.
            `compdef() { :; }; compadd() { shift; print -l -- "$@"; }; _files() { print FILES; }; eval "$SCRIPT"; words=(labctl stop w); CURRENT=3; _labctl; words=(labctl create --golden ''); CURRENT=4; _labctl`,
          ],
          { env: { ...process.env, SCRIPT: script, PATH: await onPath(), LABCTL_LAB_DIR: dir } },
        );
        expect(stdout.split('\n').filter(Boolean)).toEqual(['web-01', 'web-02', 'FILES']);
      },
    );

    it.skipIf(!hasCommand('fish'))('fish: complete -C gives what labctl answers', async () => {
      const dir = await lab();
      const script = (await labctl(['completion', 'fish'])).stdout;
      const { stdout } = await promisify(execFile)(
        'fish',
        ['-c', 'printf "%s" "$SCRIPT" | source; complete -C "labctl snapshot re"; complete -C "labctl ssh db"'],
        { env: { ...process.env, SCRIPT: script, PATH: await onPath(), LABCTL_LAB_DIR: dir } },
      );
      expect(
        stdout
          .split('\n')
          .filter(Boolean)
          .map((line) => line.split('\t')[0]),
      ).toEqual(['revert', 'db-01']);
    });
  });
});

describe('install', () => {
  it('scripts/link-bin.sh puts labctl on PATH as a link to the built binary, re-runs, and leaves a foreign labctl alone', async () => {
    const script = resolve(import.meta.dirname, '../../../scripts/link-bin.sh');
    const binDir = await mkdtemp(join(tmpdir(), 'labctl-bin-'));
    const run = promisify(execFile);
    for (let round = 0; round < 2; round++) await run(script, [], { env: { ...process.env, LABCTL_BIN_DIR: binDir } });
    expect(await realpath(join(binDir, 'labctl'))).toBe(await realpath(bin));
    const { stdout } = await run('labctl', ['version', '--json'], {
      env: { ...process.env, PATH: `${binDir}:${process.env.PATH}` },
    });
    expect(JSON.parse(stdout).version).toMatch(/^\d+\.\d+\.\d+/);
    const foreign = await mkdtemp(join(tmpdir(), 'labctl-bin-'));
    await writeFile(join(foreign, 'labctl'), '#!/bin/sh\necho mine\n', { mode: 0o755 });
    const out = await run(script, [], { env: { ...process.env, LABCTL_BIN_DIR: foreign } });
    expect(out.stdout).toMatch(/exists and is not a link; left alone/);
    expect(await readFile(join(foreign, 'labctl'), 'utf8')).toBe('#!/bin/sh\necho mine\n');
  });
});
