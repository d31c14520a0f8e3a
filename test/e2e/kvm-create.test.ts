import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fingerprintTree } from '@labctl/core/testing/hostile';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, domainsAt, removeAllDomains, type Run, repo, runInNetns, sha256, virshAt } from './run.js';

/**
 * `labctl create` end to end on real libvirt + qemu (TCG here), in a network namespace and a private
 * libvirtd started by scripts/testbed/kvm-up.sh, with the demo guest from scripts/guest/build-guest.sh.
 * The built binary runs inside the netns, exactly as a user would run it there.
 */
const gate = requireTestbed('the KVM end-to-end tests', {
  root: true,
  commands: ['virsh', 'libvirtd', 'qemu-system-x86_64', 'qemu-img', 'ansible', 'ip'],
});
// One namespace per run: two runs on one machine (or one killed mid-way) never share a bridge.
const NETNS = `labctl-kvm-e2e-${process.pid}`;
const SUBNET = '10.82.0.0/24';

let root: string;
let bed: string;
let guest: string;
let uri: string;
let labDir: string;
let goldenSum: string;

function labctl(args: string[], dir = labDir, timeoutMs = 300_000): Promise<Run> {
  return runInNetns(NETNS, [process.execPath, bin, ...args, '--lab-dir', dir], { ...process.env, LIBVIRT_DEFAULT_URI: uri, CI: process.env.CI ?? '' }, timeoutMs);
}

function virsh(...args: string[]): string {
  return virshAt(uri, ...args);
}

function domains(): string[] {
  return domainsAt(uri);
}

async function state(dir = labDir): Promise<{ vms: Array<{ name: string; state: string; addresses: string[]; ssh: { hostKeys: string[] }; error?: string }> }> {
  return JSON.parse(await readFile(join(dir, '.labctl', 'state.json'), 'utf8'));
}

async function overlays(dir = labDir): Promise<string[]> {
  const disks = join(dir, '.labctl', 'disks');
  if (!existsSync(disks)) return [];
  return (await readdir(disks)).filter((file) => file.endsWith('.qcow2')).sort();
}

async function writeLab(dir: string, extra: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, 'labctl.yaml'),
    [
      `lab: ${dir.split('/').pop()}`,
      'concurrency: 6',
      'defaults:',
      '  memory: 128',
      `  network: labnet`,
      `  ssh: { user: root, keyFile: ${guest}/id_ed25519 }`,
      extra,
    ].join('\n'),
  );
}

function directBoot(): string {
  return [`  golden: ${guest}/golden.vhd`, `  kernel: ${guest}/vmlinux`, `  initrd: ${guest}/initrd-boot.gz`, '  cmdline: console=ttyS0 quiet panic=-1'].join('\n');
}

/** Starts `labctl create` in the background and sends `signal` once `ready(state)` says enough VMs exist. */
async function interruptCreate(args: string[], signal: NodeJS.Signals, ready: (vms: Array<{ name: string; state: string }>) => boolean): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const child: ChildProcess = spawn('ip', ['netns', 'exec', NETNS, process.execPath, bin, ...args, '--lab-dir', labDir], {
    env: { ...process.env, LIBVIRT_DEFAULT_URI: uri },
    stdio: 'ignore',
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => child.on('exit', (code, sig) => done({ code, signal: sig })));
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const current = await state().catch(() => ({ vms: [] }));
    if (ready(current.vms)) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  // `ip netns exec` execs node, so the child's pid is labctl's own.
  child.kill(signal);
  return exited;
}

describe.skipIf(gate.skip)('labctl create/ip/destroy on KVM (libvirt + qemu in a netns)', () => {
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'labctl-kvm-e2e-'));
    bed = join(root, 'bed');
    guest = join(tmpdir(), 'labctl-kvm-e2e-guest');
    execFileSync(join(repo, 'scripts/guest/build-guest.sh'), [guest], { stdio: 'ignore' });
    const env = execFileSync(join(repo, 'scripts/testbed/kvm-up.sh'), [bed], { encoding: 'utf8', env: { ...process.env, KVM_NETNS: NETNS, KVM_SUBNET: SUBNET } });
    uri = /^LIBVIRT_URI='([^']+)'/m.exec(env)![1]!;
    labDir = join(root, 'lab');
    await writeLab(labDir, directBoot());
    goldenSum = sha256(join(guest, 'golden.vhd'));
  });

  afterAll(async () => {
    if (!bed) return;
    removeAllDomains(uri);
    execFileSync(join(repo, 'scripts/testbed/kvm-down.sh'), [bed], { stdio: 'ignore', timeout: 120_000 });
    await rm(root, { recursive: true, force: true });
  });

  it('refuses a missing golden image, a corrupt one and an unknown network before creating anything', async () => {
    const missing = await labctl(['create', '--count', '2', '--golden', join(root, 'nope.vhd'), '--json']);
    expect(missing.code).toBe(2);
    expect(JSON.parse(missing.stdout).error.message).toMatch(/nope\.vhd does not exist/);

    const corrupt = join(root, 'corrupt.vhd');
    await writeFile(corrupt, Buffer.alloc(1 << 20, 0x5a));
    const bad = await labctl(['create', '--count', '2', '--golden', corrupt, '--json']);
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout).error.message).toMatch(/corrupt\.vhd is not a readable vpc image/);

    const network = await labctl(['create', '--count', '2', '--network', 'no-such-net', '--json']);
    expect(network.code).toBe(2);
    expect(JSON.parse(network.stdout).error.message).toMatch(/network "no-such-net" does not exist/);

    // --dry-run runs the same read-only checks and refuses the same things; a plan that would pass
    // says per VM what would happen. None of it makes a domain, a disk, a state file or a directory.
    const labFiles = async () => (existsSync(join(labDir, '.labctl')) ? (await readdir(join(labDir, '.labctl'), { recursive: true })).map(String).sort() : []);
    const beforeDry = await labFiles();
    for (const [args, message] of [
      [['--golden', join(root, 'nope.vhd')], /real run would be refused: .*nope\.vhd does not exist/],
      [['--network', 'no-such-net'], /real run would be refused: .*network "no-such-net" does not exist/],
    ] as const) {
      const dry = await labctl(['create', '--count', '2', ...args, '--dry-run', '--json']);
      expect([args, dry.code]).toEqual([args, 2]);
      expect(JSON.parse(dry.stdout).error.message).toMatch(message);
    }
    const dry = await labctl(['create', '--count', '2', '--dry-run', '--json']);
    expect(dry.code, dry.stderr).toBe(0);
    const planned = JSON.parse(dry.stdout);
    expect(planned.actions).toEqual({ 'vm-01': 'create', 'vm-02': 'create' });
    expect(planned.checks.map((check: { id: string; level: string }) => [check.id, check.level])).toEqual(expect.arrayContaining([['libvirt.connect', 'ok'], ['golden.readable', 'ok'], ['network.exists', 'ok']]));
    expect(await labFiles()).toEqual(beforeDry);

    expect(domains()).toEqual([]);
    expect(await overlays()).toEqual([]);
    const after = await state().catch(() => ({ vms: [] }));
    expect(after.vms).toEqual([]);
  });

  it('creates 10 VMs that all answer SSH with their host keys recorded; ansible reaches each by name with strict host keys', async () => {
    const run = await labctl(['create', '--count', '10', '--timeout', '240', '--inventory', join(labDir, 'hosts.ini'), '--json']);
    console.log(`create --count 10: ${run.ms} ms`);
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.counts).toMatchObject({ planned: 10, created: 10, failed: 0, reachable: 10 });
    const names = Array.from({ length: 10 }, (_, i) => `vm-${String(i + 1).padStart(2, '0')}`);
    expect(domains()).toEqual(names);
    expect(await overlays()).toEqual(names.map((name) => `${name}.qcow2`));
    const saved = await state();
    for (const vm of saved.vms) {
      expect(vm.state).toBe('running');
      expect(vm.addresses[0]).toMatch(/^10\.82\.0\.\d+$/);
      expect(vm.ssh.hostKeys[0]).toMatch(/^ssh-ed25519 AAAA/);
    }
    expect(new Set(saved.vms.map((vm) => vm.addresses[0])).size).toBe(10);
    expect(result.inventory.hosts).toBe(10);

    // Ansible through the emitted inventory, host keys checked against the known_hosts labctl wrote.
    const ansible = execFileSync('ip', ['netns', 'exec', NETNS, 'ansible', 'all', '-i', join(labDir, 'hosts.ini'), '-m', 'raw', '-a', 'hostname', '-f', '10'], {
      encoding: 'utf8',
      env: { ...process.env, ANSIBLE_HOST_KEY_CHECKING: 'True', ANSIBLE_NOCOLOR: '1' },
    });
    for (const name of names) expect(ansible).toMatch(new RegExp(`^${name} \\| CHANGED \\| rc=0 >>\\n${name}\\b`, 'm'));
  });

  it('--count 12 after 10 adds exactly two; `labctl ip --wait` confirms the pinned host keys', async () => {
    const before = await state();
    const run = await labctl(['create', '--count', '12', '--timeout', '240', '--json']);
    console.log(`create --count 12 after 10: ${run.ms} ms`);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).counts).toMatchObject({ planned: 12, created: 2, kept: 10, reachable: 12 });
    expect(domains()).toHaveLength(12);
    const after = await state();
    for (const vm of before.vms) expect(after.vms.find((v) => v.name === vm.name)?.ssh.hostKeys).toEqual(vm.ssh.hostKeys);

    const ip = await labctl(['ip', 'vm-11', 'vm-12', '--wait', '--timeout', '60', '--json']);
    expect(ip.code, ip.stderr).toBe(0);
    expect(JSON.parse(ip.stdout).vms.map((vm: { status: string }) => vm.status)).toEqual(['reachable', 'reachable']);
  });

  it('converges after SIGINT and after SIGKILL mid-way: no duplicates, no orphaned overlays', async () => {
    await writeLab(labDir, `${directBoot()}\ngroups:\n  vm: { count: 12 }\n  f: { count: 4 }`);
    const interrupted = await interruptCreate(['create', '--group', 'f', '--new-group', '--concurrency', '1', '--no-wait'], 'SIGINT', (vms) =>
      vms.some((vm) => vm.name.startsWith('f-') && vm.state === 'created'),
    );
    expect(interrupted.code).toBe(130);
    const partial = (await state()).vms.filter((vm) => vm.name.startsWith('f-'));
    expect(partial.length).toBeGreaterThan(0);
    expect(domains().filter((name) => name.startsWith('f-')).length).toBeLessThan(4);

    const killed = await interruptCreate(['create', '--group', 'f', '--count', '6', '--concurrency', '1', '--no-wait'], 'SIGKILL', (vms) =>
      vms.some((vm) => vm.name === 'f-05' && vm.state === 'created'),
    );
    expect(killed.signal).toBe('SIGKILL');

    const rerun = await labctl(['create', '--group', 'f', '--count', '6', '--timeout', '240', '--json']);
    expect(rerun.code, rerun.stderr).toBe(0);
    const f = Array.from({ length: 6 }, (_, i) => `f-0${i + 1}`);
    expect(domains().filter((name) => name.startsWith('f-'))).toEqual(f);
    expect((await overlays()).filter((file) => file.startsWith('f-'))).toEqual(f.map((name) => `${name}.qcow2`));
    const vms = (await state()).vms.filter((vm) => vm.name.startsWith('f-'));
    expect(vms.map((vm) => vm.name).sort()).toEqual(f);
    expect(vms.every((vm) => vm.state === 'running' && vm.ssh.hostKeys.length === 1)).toBe(true);

    const destroyed = await labctl(['destroy', ...f, '--json']);
    expect(destroyed.code, destroyed.stderr).toBe(0);
    expect(domains().filter((name) => name.startsWith('f-'))).toEqual([]);
  });

  it('a VM that never gets an address times out and says what it saw and what to check', async () => {
    const xml = join(root, 'nodhcp.xml');
    await writeFile(xml, "<network><name>nodhcp</name><bridge name='labctl-e2e-nd' stp='off'/><dns enable='no'/></network>");
    virsh('net-define', xml);
    virsh('net-start', 'nodhcp');
    const run = await labctl(['create', '--group', 'dark', '--new-group', '--count', '1', '--network', 'nodhcp', '--timeout', '15', '--json']);
    expect(run.code).toBe(1);
    const vm = JSON.parse(run.stdout).vms[0];
    expect(vm.name).toBe('dark-01');
    expect(vm.error).toMatch(/not reachable in time: adapter 52:54:00:[0-9a-f:]+ has no address yet/);
    expect(vm.hint).toMatch(/No DHCP lease/);
    expect(vm.hint).toMatch(/dark-01\.console\.log/);
    expect((await labctl(['destroy', 'dark-01'])).code).toBe(0);
  });

  it('boots a self-contained bootable disk (bootloader inside, identity from the SMBIOS serial)', async () => {
    const bootLab = join(root, 'bootlab');
    await writeLab(bootLab, `  golden: ${guest}/bootdisk.vhd`);
    const run = await labctl(['create', '--group', 'boot', '--new-group', '--count', '1', '--timeout', '180', '--json'], bootLab);
    expect(run.code, run.stderr).toBe(0);
    const vm = (await state(bootLab)).vms[0]!;
    expect(vm.name).toBe('boot-01');
    // The recorded host key, pinned: ssh must accept the VM with StrictHostKeyChecking=yes.
    const knownHosts = join(root, 'boot_known_hosts');
    await writeFile(knownHosts, `${vm.addresses[0]} ${vm.ssh.hostKeys[0]}\n`);
    const hostname = execFileSync(
      'ip',
      ['netns', 'exec', NETNS, 'ssh', '-i', join(guest, 'id_ed25519'), '-o', 'BatchMode=yes', '-o', `UserKnownHostsFile=${knownHosts}`,
        '-o', 'StrictHostKeyChecking=yes', `root@${vm.addresses[0]}`, 'hostname'],
      { encoding: 'utf8', input: '' },
    );
    expect(hostname.trim()).toBe('boot-01');
  });

  it('destroy --all leaves no domain and no overlay, the golden image byte-identical; repeating it is harmless', async () => {
    // The state file is hand-editable: point every VM's recorded files at a victim directory outside
    // the lab, with names the old rule accepted (VM name prefix, .qcow2, resources.xml). Destroy must
    // remove only the files it derives itself inside the lab, name the others, and touch none of them.
    // list asks libvirt: a VM powered off by hand and one undefined by hand show as drift.
    const [off, gone] = (await state()).vms.map((vm) => vm.name);
    virsh('destroy', off!);
    // Undefining a running domain leaves it running (transient): stop it first, as a user would.
    virsh('destroy', gone!);
    virsh('undefine', gone!);
    const listed = await labctl(['list', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const byName = new Map(JSON.parse(listed.stdout).vms.map((vm: { name: string }) => [vm.name, vm]));
    expect(byName.get(off)).toMatchObject({ state: 'running', live: 'stopped', drift: 'state' });
    expect(byName.get(gone)).toMatchObject({ state: 'running', live: 'gone', drift: 'gone' });

    const victim = join(root, 'victim');
    await mkdir(victim, { recursive: true });
    const edited = JSON.parse(await readFile(join(labDir, '.labctl', 'state.json'), 'utf8'));
    for (const vm of edited.vms) {
      execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(victim, `${vm.name}.qcow2`), '1M']);
      vm.resources = { ...vm.resources, disk: join(victim, `${vm.name}.qcow2`), xml: join(victim, 'resources.xml'), consoleLog: join(victim, `${vm.name}.console.log`) };
      await writeFile(join(victim, `${vm.name}.console.log`), 'user data');
    }
    await writeFile(join(victim, 'resources.xml'), '<user/>');
    await writeFile(join(labDir, '.labctl', 'state.json'), JSON.stringify(edited));
    const victimBefore = await fingerprintTree(victim);
    for (const dir of [labDir, join(root, 'bootlab')]) {
      const run = await labctl(['destroy', '--all', '--json'], dir);
      expect(run.code, run.stderr).toBe(0);
      expect(await overlays(dir)).toEqual([]);
      expect((await state(dir)).vms).toEqual([]);
      if (dir === labDir) {
        const warnings: string[] = JSON.parse(run.stdout).warnings ?? [];
        for (const vm of edited.vms) expect(warnings.join('\n')).toContain(join(victim, `${vm.name}.qcow2`));
        expect(warnings.join('\n')).toContain(join(victim, 'resources.xml'));
      }
    }
    expect(await fingerprintTree(victim)).toEqual(victimBefore);
    expect(domains()).toEqual([]);
    expect(sha256(join(guest, 'golden.vhd'))).toBe(goldenSum);
    const again = await labctl(['destroy', '--all', '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).vms).toEqual([]);
  });
});
