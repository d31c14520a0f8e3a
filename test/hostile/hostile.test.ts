import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, readdir, readFile, readlink, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { hostileNamesSample, injectionValues } from '@labctl/core/testing/hostile';
import { hasCommand } from '@labctl/core/testing/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labctl, mapLimit, rawControls, type Sandbox, sandbox } from './run.js';

/**
 * "Nothing outside the lab is ever touched", through the built binary, one describe per class of the
 * issue. Every case checks the exit status, the message, that the victim directory beside the lab is
 * byte-for-byte and mode-for-mode what it was, and that no temporary file is left. Inputs are
 * generated per class (core/src/testing/hostile.ts), not picked one by one.
 */
let box: Sandbox;
const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHJ0cnVzdGVkLWtleS1mb3ItdGVzdHMtb25seS0wMDAw';

beforeAll(async () => {
  box = await sandbox();
});
afterAll(async () => {
  await rm(box.root, { recursive: true, force: true });
});

async function expectNothingTouched(label: unknown): Promise<void> {
  const { changed, temporaries } = await box.untouched();
  expect([label, changed, temporaries]).toEqual([label, [], []]);
}

function stateFile(vms: unknown[], lab: unknown = 'hostile'): string {
  return JSON.stringify({ version: 1, lab, vms });
}

async function labWith(files: { yaml?: string; state?: string }): Promise<string> {
  const dir = await box.lab();
  if (files.yaml !== undefined) await writeFile(join(dir, 'labctl.yaml'), files.yaml);
  if (files.state !== undefined) {
    await mkdir(join(dir, '.labctl'), { recursive: true });
    await writeFile(join(dir, '.labctl', 'state.json'), files.state);
  }
  return dir;
}

const hasMkfifo = hasCommand('mkfifo');

describe('1. names are validated where they enter, before anything changes', () => {
  // A NUL cannot be passed in argv at all, and oclif reads an empty value as no flag; every other
  // generated name goes through the binary (the library suite covers those two too).
  const names = hostileNamesSample().filter((name) => name !== '' && !name.includes('\u0000'));
  // Four entry points per name cost four node starts: a spread quarter of the names here; the library
  // suite (core/src/hostile.test.ts) puts every generated name through every entry point.
  const spread = names.filter((_, i) => i % 4 === 0);

  it(`create --group NAME (${names.length} generated names, the issue's ../../../victim/web among them): exit 2, a message naming the rule, nothing outside the lab changed`, async () => {
    const dir = await labWith({ yaml: `defaults:\n  golden: ${join(box.victim, 'web-01.qcow2')}\n` });
    const results = await mapLimit(names, 4, (name) => labctl(['create', `--group=${name}`, '--count', '1', '--no-wait', '--lab-dir', dir]));
    results.forEach((result, i) => {
      expect([names[i], result.code, result.hung]).toEqual([names[i], 2, false]);
      expect([names[i], result.stderr]).toEqual([names[i], expect.stringMatching(/not a valid group name|USAGE|--group/)]);
      expect([names[i], rawControls(result.stderr + result.stdout)]).toEqual([names[i], []]);
    });
    expect(existsSync(join(dir, '.labctl'))).toBe(false);
    await expectNothingTouched('create --group');
  });

  it('the same names as lab-file groups, as the lab name and in state: exit 2 from create, list, inventory and destroy', async () => {
    const cases = spread.flatMap((name) => [
      { name, yaml: `groups:\n  ${JSON.stringify(name)}: { count: 1, golden: /nonexistent.vhd }\n`, args: ['create', '--no-wait'] },
      { name, yaml: `lab: ${JSON.stringify(name)}\n`, args: ['list'] },
      { name, state: stateFile([{ name, group: 'web', provider: 'libvirt', resources: { disk: join(box.victim, 'web-01.qcow2') } }]), args: ['destroy', '--all'] },
      { name, state: stateFile([{ name: 'web-01', group: name, provider: 'libvirt' }]), args: ['inventory', '-o', 'hosts.ini'] },
    ]);
    const results = await mapLimit(cases, 4, async (c) => {
      const dir = await labWith({ ...(c.yaml ? { yaml: c.yaml } : {}), ...(c.state ? { state: c.state } : {}) });
      return { dir, result: await labctl([...c.args, '--lab-dir', dir], { cwd: dir }) };
    });
    for (const [i, { dir, result }] of results.entries()) {
      const label = [cases[i]!.name, cases[i]!.args[0]];
      expect([label, result.code, result.hung]).toEqual([label, 2, false]);
      expect([label, rawControls(result.stderr)]).toEqual([label, []]);
      expect([label, existsSync(join(dir, 'hosts.ini'))]).toEqual([label, false]);
    }
    await expectNothingTouched('lab file and state names');
  });

  it('hosts whose names clash (case, duplicates) and --host values that are no host name are refused (exit 2)', async () => {
    const dir = await labWith({ yaml: 'provider: hyperv\ndefaults: { golden: "D:\\\\g.vhdx", network: LabSwitch }\nhosts:\n  - { name: HV01 }\n  - { name: hv01 }\n' });
    expect((await labctl(['hyperv', 'scripts', '--emit', join(dir, 'out'), '--count', '1', '--lab-dir', dir])).code).toBe(2);
    const single = await labWith({ yaml: 'provider: hyperv\ndefaults: { golden: "D:\\\\g.vhdx", network: LabSwitch }\n' });
    for (const host of ['hv/01', 'hv 01', '../hv', 'hv01\n', '-oProxyCommand=id']) {
      const result = await labctl(['create', '--provider', 'hyperv', `--host=${host}`, '--count', '1', '--dry-run', '--emit-powershell', join(single, 'out'), '--lab-dir', single]);
      expect([host, result.code]).toEqual([host, 2]);
    }
    expect(existsSync(join(dir, 'out')) || existsSync(join(single, 'out'))).toBe(false);
    await expectNothingTouched('host names');
  });
});

describe('3. state is untrusted input: values stay data in every emitter and on the terminal', () => {
  it('VM vars, users and keys carrying line breaks, host patterns or escapes inject no host, group or key', async () => {
    const values = injectionValues();
    const results = await mapLimit(values, 3, async (value) => {
      const dir = await labWith({
        state: stateFile([
          { name: 'web-01', group: 'web', provider: 'libvirt', state: 'running', addresses: ['192.0.2.10'], ssh: { user: 'root', hostKeys: [KEY] }, vars: { ansible_host: value, note: value } },
          { name: 'web-02', group: 'web', provider: 'libvirt', state: 'running', addresses: ['192.0.2.11'], ssh: { user: 'root', hostKeys: [KEY, `${KEY}\n* ${KEY}`] } },
        ]),
      });
      const outputs: Record<string, string> = {};
      for (const format of ['ini', 'yaml', 'json'] as const) {
        const run = await labctl(['inventory', '--format', format, '-o', `hosts.${format}`, '--lab-dir', dir], { cwd: dir });
        outputs[format] = `${run.code}`;
        if (run.code === 0) outputs[`${format}-text`] = await readFile(join(dir, `hosts.${format}`), 'utf8');
      }
      const knownHosts = existsSync(join(dir, 'known_hosts')) ? await readFile(join(dir, 'known_hosts'), 'utf8') : '';
      return { value, dir, outputs, knownHosts };
    });
    for (const { value, dir, outputs, knownHosts } of results) {
      // Either refused as a whole (exit 2) or written with every value kept as data.
      for (const format of ['ini', 'yaml', 'json']) expect([value, format, ['0', '2']]).toEqual([value, format, expect.arrayContaining([outputs[format]])]);
      for (const line of knownHosts.split('\n').filter((l) => l && !l.startsWith('#'))) {
        // Only plain host fields: no pattern, list or negation that would pin a key for other hosts.
        expect([value, line]).toEqual([value, expect.stringMatching(/^(\[[0-9.]+\]:\d+|[A-Za-z0-9.-]+) ssh-ed25519 [A-Za-z0-9+/=]+$/)]);
      }
      if (outputs['ini-text'] && hasCommand('ansible-inventory')) {
        const listed = JSON.parse(execFileSync('ansible-inventory', ['-i', join(dir, 'hosts.ini'), '--list'], { encoding: 'utf8', env: { ...process.env, ANSIBLE_INVENTORY_UNPARSED_WARNING: 'False' }, stdio: ['ignore', 'pipe', 'ignore'] }));
        expect([value, Object.keys(listed._meta.hostvars).sort()]).toEqual([value, ['web-01', 'web-02']]);
        expect([value, Object.keys(listed).filter((group) => /evil/.test(group))]).toEqual([value, []]);
        expect([value, listed._meta.hostvars['web-01'].note]).toEqual([value, value]);
      }
    }
    await expectNothingTouched('inventory injection');
  });

  it('a lab-file key or state value with terminal escapes is shown escaped, never sent raw', async () => {
    const evil = '\u001b]52;c;cm0gLXJmIH4=\u0007\u001b[2J';
    const cases = [
      { yaml: `${JSON.stringify(evil)}: 1\n` },
      { yaml: `groups:\n  web: { count: 1, ${JSON.stringify(evil)}: 2 }\n` },
      { state: stateFile([{ name: 'web-01', group: 'web', provider: 'libvirt', error: `boom ${evil}` }]) },
      { state: stateFile([{ name: 'web-01', group: 'web', provider: 'libvirt', host: evil }]) },
    ];
    for (const files of cases) {
      const dir = await labWith(files);
      for (const json of [false, true]) {
        const result = await labctl(['list', ...(json ? ['--json'] : []), '--lab-dir', dir]);
        expect([files, result.code]).toEqual([files, 2]);
        expect([files, rawControls(result.stdout + result.stderr)]).toEqual([files, []]);
      }
    }
  });
});

describe('5. files labctl writes keep what they were', () => {
  it('inventory -o keeps a 0600 file 0600 and its owner, writes through a symlink, streams to -, refuses FIFOs, devices, directories and dangling links at once', async () => {
    const dir = await labWith({ state: stateFile([{ name: 'web-01', group: 'web', provider: 'libvirt', state: 'running', addresses: ['192.0.2.10'], ssh: { hostKeys: [KEY] } }]) });
    expect((await labctl(['inventory', '-o', 'secret.ini', '--lab-dir', dir], { cwd: dir })).code).toBe(0);
    await chmod(join(dir, 'secret.ini'), 0o600);
    expect((await labctl(['inventory', '-o', 'secret.ini', '--lab-dir', dir], { cwd: dir })).code).toBe(0);
    expect((await stat(join(dir, 'secret.ini'))).mode & 0o777).toBe(0o600);

    await mkdir(join(dir, 'real'));
    expect((await labctl(['inventory', '-o', 'real/hosts.ini', '--lab-dir', dir], { cwd: dir })).code).toBe(0);
    await symlink('real/hosts.ini', join(dir, 'link.ini'));
    expect((await labctl(['inventory', '-o', 'link.ini', '--lab-dir', dir], { cwd: dir })).code).toBe(0);
    expect((await lstat(join(dir, 'link.ini'))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(dir, 'link.ini'))).toBe('real/hosts.ini');

    for (const target of ['-', '/dev/stdout']) {
      const streamed = await labctl(['inventory', '-o', target, '--lab-dir', dir], { timeoutMs: 20_000 });
      expect([target, streamed.code, streamed.hung]).toEqual([target, 0, false]);
      expect(streamed.stdout).toMatch(/^web-01 ansible_host=192\.0\.2\.10/m);
    }
    const refused: string[] = ['/dev/null', join(dir, 'real'), join(dir, 'dangling.ini')];
    await symlink(join(dir, 'nowhere'), join(dir, 'dangling.ini'));
    if (hasMkfifo) {
      execFileSync('mkfifo', [join(dir, 'fifo.ini')]);
      refused.push(join(dir, 'fifo.ini'));
    }
    for (const target of refused) {
      const result = await labctl(['inventory', '-o', target, '--lab-dir', dir], { timeoutMs: 20_000 });
      expect([target, result.code, result.hung]).toEqual([target, 2, false]);
    }
    await expectNothingTouched('inventory -o');
  });

  it('--merge refuses to move hand-written hosts under a labctl group of the same name; the file and its mode stay', async () => {
    const dir = await labWith({ state: stateFile([{ name: 'web-01', group: 'web', provider: 'libvirt', state: 'running', addresses: ['192.0.2.10'], ssh: { hostKeys: [KEY] } }]) });
    const hand = '[web]\nmy-own-web ansible_host=192.0.2.50\n';
    await writeFile(join(dir, 'site.ini'), hand, { mode: 0o600 });
    const result = await labctl(['inventory', '--merge', 'site.ini', '--lab-dir', dir], { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/hand-written group "web" has host\(s\) my-own-web/);
    expect(await readFile(join(dir, 'site.ini'), 'utf8')).toBe(hand);
    expect((await stat(join(dir, 'site.ini'))).mode & 0o777).toBe(0o600);
  });
});

describe('6. bounded input', () => {
  it('--count and lab-file counts past the limit, alias bombs and 5,000-deep nesting: exit 2 at once, never INTERNAL', async () => {
    const dir = await labWith({ yaml: 'defaults: { golden: /nonexistent.vhd }\n' });
    const bomb = ['lab: bomb', 'a: &a ["x","x","x","x","x","x","x","x","x"]', ...'bcdefgh'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefgh'[i]}`).join(',')}]`)].join('\n');
    const cases: Array<{ args: string[]; yaml?: string; state?: string }> = [
      { args: ['create', '--count', '20000000', '--dry-run'] },
      { args: ['create', '--count', '10001', '--dry-run'] },
      { args: ['create', '--dry-run'], yaml: 'defaults: { golden: g.vhd }\ngroups: { web: { count: 20000000 } }\n' },
      { args: ['list'], yaml: bomb },
      { args: ['list'], yaml: `${'['.repeat(5000)}${']'.repeat(5000)}` },
      { args: ['list'], state: `{"version":1,"lab":"x","vms":[],"deep":${'['.repeat(5000)}${']'.repeat(5000)}}` },
    ];
    for (const c of cases) {
      const lab = c.yaml !== undefined || c.state !== undefined ? await labWith({ ...(c.yaml ? { yaml: c.yaml } : {}), ...(c.state ? { state: c.state } : {}) }) : dir;
      const result = await labctl([...c.args, '--lab-dir', lab, '--json'], { timeoutMs: 20_000 });
      expect([c.args, c.yaml?.slice(0, 20), result.code, result.hung]).toEqual([c.args, c.yaml?.slice(0, 20), 2, false]);
      expect(JSON.parse(result.stdout).error.code).not.toBe('INTERNAL');
    }
  });

  it('list renders a table of 130,000 VMs (a spread of that many rows overflowed the stack)', async () => {
    const vms = Array.from({ length: 130_000 }, (_, i) => ({ name: `vm-${String(i).padStart(6, '0')}`, group: 'bulk', provider: 'libvirt' }));
    const dir = await labWith({ state: stateFile(vms) });
    const result = await labctl(['list', '--offline', '--lab-dir', dir], { timeoutMs: 120_000 });
    expect([result.code, result.stderr]).toEqual([0, '']);
    expect(result.stdout.trimEnd().split('\n')).toHaveLength(130_001);
  }, 180_000);

  it.skipIf(!hasMkfifo)('a FIFO as lab file, state file, password file, hosts file or disk is refused without reading (exit 2, no hang)', async () => {
    const dir = await box.lab();
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const fifoLab = await box.lab();
    execFileSync('mkfifo', [join(fifoLab, 'labctl.yaml')]);
    const fifoState = await box.lab();
    await mkdir(join(fifoState, '.labctl'));
    execFileSync('mkfifo', [join(fifoState, '.labctl', 'state.json')]);
    const delegation = ['delegation', 'plan', '--hosts', 'hv01,hv02', '--domain', 'lab.example', '--ldap-url', 'ldaps://127.0.0.1:1', '--bind-user', 'u@lab.example'];
    const cases = [
      ['list', '--lab-dir', fifoLab],
      ['list', '--lab-dir', fifoState],
      ['destroy', '--all', '--lab-dir', fifoState],
      [...delegation, '--password-file', fifo, '--lab-dir', dir],
      ['delegation', 'plan', '--hosts-file', fifo, '--domain', 'lab.example', '--ldap-url', 'ldaps://127.0.0.1:1', '--lab-dir', dir],
      ['vhd', 'info', fifo],
      ['vhd', 'check', fifo],
      ['vhd', 'flatten', fifo, '-o', join(dir, 'out.vhd')],
      ['template', 'steps', '--profile', fifo],
    ];
    for (const args of cases) {
      const result = await labctl(args, { timeoutMs: 20_000, env: { LABCTL_LDAP_PASSWORD: '' } });
      expect([args.slice(0, 3), result.code, result.hung]).toEqual([args.slice(0, 3), 2, false]);
      expect([args.slice(0, 3), result.stderr]).toEqual([args.slice(0, 3), expect.stringMatching(/FIFO|not a regular file|not a disk image file/)]);
    }
  });

  it('a directory where a file is expected, and a file where a directory is expected, are clear errors', async () => {
    const dir = await box.lab();
    await mkdir(join(dir, 'labctl.yaml'));
    const asDir = await labctl(['list', '--lab-dir', dir]);
    expect([asDir.code, asDir.stderr]).toEqual([2, expect.stringMatching(/is a directory, not a regular file/)]);
    const hv = await labWith({ yaml: 'provider: hyperv\ndefaults: { golden: "D:\\\\g.vhdx", network: LabSwitch }\nhosts:\n  - { name: hv01 }\n' });
    await writeFile(join(hv, 'out'), 'a file');
    const asFile = await labctl(['hyperv', 'scripts', '--emit', join(hv, 'out'), '--count', '1', '--lab-dir', hv]);
    expect([asFile.code, asFile.stderr]).toEqual([2, expect.stringMatching(/not a directory/)]);
    const proc = await labctl(['hyperv', 'scripts', '--emit', '/proc/self/labctl-out', '--count', '1', '--lab-dir', hv], { timeoutMs: 20_000 });
    expect([proc.code, proc.hung, proc.stderr]).toEqual([2, false, expect.stringMatching(/procfs/)]);
  });
});

describe('8. emitting files: a fresh or labctl-owned directory, never through links, never over files labctl did not write', () => {
  it('refuses a foreign non-empty directory, a symlinked one and a foreign file in its own; re-emitting into its own is fine', async () => {
    const hv = await labWith({ yaml: 'provider: hyperv\ndefaults: { golden: "D:\\\\g.vhdx", network: LabSwitch }\nhosts:\n  - { name: hv01 }\n' });
    const emit = (dir: string) => labctl(['hyperv', 'scripts', '--emit', dir, '--count', '2', '--lab-dir', hv]);
    expect((await emit(join(hv, 'review'))).code).toBe(0);
    expect((await emit(join(hv, 'review'))).code).toBe(0);
    expect((await emit(box.victim)).code).toBe(2);
    await symlink(box.victim, join(hv, 'sneaky'));
    expect((await emit(join(hv, 'sneaky'))).code).toBe(2);
    await rm(join(hv, 'review', 'run-hv01.ps1'));
    await writeFile(join(hv, 'review', 'run-hv01.ps1'), 'Write-Host "mine"');
    // The marker lists it as labctl's, so it may be replaced; a file the marker does not list may not.
    expect((await emit(join(hv, 'review'))).code).toBe(0);
    const marker = await readFile(join(hv, 'review', '.labctl-emitted'), 'utf8');
    await writeFile(join(hv, 'review', '.labctl-emitted'), marker.replace(/^run-hv01\.ps1\n/m, ''));
    expect((await emit(join(hv, 'review'))).code).toBe(2);
    await expectNothingTouched('emit');
  });
});

describe('9. numbers that cannot work are refused with the limit named', () => {
  it('memory, cpus, timeouts: exit 2, the limit in the message', async () => {
    const dir = await labWith({ yaml: 'defaults: { golden: /nonexistent.vhd }\n' });
    const cases: Array<[string[], RegExp]> = [
      [['--memory', '1e300'], /not a size|maximum/],
      [['--memory', '8'], /minimum of 32 MiB/],
      [['--memory', '1.5K'], /whole number of MiB/],
      [['--memory', '99999T'], /maximum/],
      [['--cpus', '5000'], /1024/],
      [['--timeout', '0'], /1/],
    ];
    for (const [flags, message] of cases) {
      const result = await labctl(['create', '--count', '1', '--dry-run', ...flags, '--lab-dir', dir]);
      expect([flags, result.code, result.stderr]).toEqual([flags, 2, expect.stringMatching(message)]);
    }
    for (const yaml of ['timeout: 0.5\n', 'defaults: { memory: 1e300 }\n', 'defaults: { cpus: 100000 }\n', 'concurrency: 100000\n']) {
      const lab = await labWith({ yaml });
      const result = await labctl(['create', '--count', '1', '--dry-run', '--lab-dir', lab]);
      expect([yaml, result.code]).toEqual([yaml, 2]);
    }
  });
});

describe('7. VHD: sizes that do not fit, and interrupted flattens', () => {
  const gate = hasCommand('qemu-img');

  it.skipIf(!gate)('a parent smaller than its child is refused by check, chain and flatten with both sizes named; --allow-grown-child reads it', async () => {
    const dir = await box.lab();
    execFileSync('qemu-img', ['create', '-q', '-f', 'vpc', '-o', 'subformat=dynamic', join(dir, 'base.vhd'), '64M']);
    expect((await labctl(['vhd', 'diff', join(dir, 'base.vhd'), '-o', join(dir, 'child.vhd')])).code).toBe(0);
    // Shrink the parent's recorded size (footer field, checksum kept valid), as an edited footer would.
    await patchVhdCurrentSize(join(dir, 'base.vhd'), 32 * 1024 * 1024);
    for (const args of [['vhd', 'check', join(dir, 'child.vhd')], ['vhd', 'chain', join(dir, 'child.vhd')], ['vhd', 'flatten', join(dir, 'child.vhd'), '-o', join(dir, 'flat.vhd')]]) {
      const result = await labctl(args);
      expect([args[1], result.code, result.stdout + result.stderr]).toEqual([args[1], 1, expect.stringMatching(/smaller \(33554432 bytes\) than the child \(67\d+ bytes\)/)]);
    }
    expect(existsSync(join(dir, 'flat.vhd'))).toBe(false);
    const allowed = await labctl(['vhd', 'flatten', join(dir, 'child.vhd'), '-o', join(dir, 'flat.vhd'), '--allow-grown-child']);
    expect(allowed.code, allowed.stderr).toBe(0);
  });

  it.skipIf(!gate)('flatten hung up (SIGHUP) or quit (SIGQUIT) midway exits 130 and leaves no temporary file; a dead run\'s temporary is removed by the next', async () => {
    const dir = await box.lab();
    const raw = join(dir, 'base.raw');
    // 384 MiB of non-zero data: long enough to be interrupted midway on any machine.
    execFileSync('sh', ['-c', `head -c ${384 * 1024 * 1024} /dev/urandom > "$1"`, 'sh', raw]);
    execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'vpc', '-o', 'subformat=dynamic', raw, join(dir, 'base.vhd')]);
    await rm(raw);
    for (const signal of ['SIGHUP', 'SIGQUIT'] as const) {
      const out = join(dir, `flat-${signal}.vhd`);
      const child = spawn(process.execPath, [join(import.meta.dirname, '../../packages/cli/bin/run.js'), 'vhd', 'flatten', join(dir, 'base.vhd'), '-o', out], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      let sent = false;
      child.stderr.on('data', (chunk) => {
        stderr += chunk;
        if (!sent && /: \d+%/.test(stderr)) {
          sent = true;
          child.kill(signal);
        }
      });
      const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      expect([signal, sent, code]).toEqual([signal, true, 130]);
      expect([signal, (await readdir(dir)).filter((f) => f.includes('.labctl-'))]).toEqual([signal, []]);
      expect(existsSync(out)).toBe(false);
    }
    const dead = spawn('true');
    await new Promise((resolve) => dead.on('exit', resolve));
    const leftover = join(dir, `.flat.vhd.labctl-${dead.pid}-0123abcd.tmp`);
    await writeFile(leftover, Buffer.alloc(4096, 1));
    const mine = join(dir, `.flat.vhd.labctl-${process.pid}-0123abcd.tmp`);
    await writeFile(mine, 'a live process owns this');
    const run = await labctl(['vhd', 'flatten', join(dir, 'base.vhd'), '-o', join(dir, 'flat.vhd')], { timeoutMs: 300_000 });
    expect(run.code, run.stderr).toBe(0);
    expect(existsSync(leftover)).toBe(false);
    expect(existsSync(mine)).toBe(true);
    await rm(mine);
  }, 300_000);
});

/** Set a VHD footer's current size (both copies of a dynamic disk), with a valid checksum. */
async function patchVhdCurrentSize(path: string, size: number): Promise<void> {
  const data = await readFile(path);
  const patch = (offset: number) => {
    data.writeBigUInt64BE(BigInt(size), offset + 48);
    data.writeUInt32BE(0, offset + 64);
    let sum = 0;
    for (let i = offset; i < offset + 512; i++) sum += data[i]!;
    data.writeUInt32BE(~sum >>> 0, offset + 64);
  };
  patch(0);
  patch(data.length - 512);
  await writeFile(path, data);
}
