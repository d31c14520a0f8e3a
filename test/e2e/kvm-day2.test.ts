import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, domainsAt, removeAllDomains, type Run, repo, runInNetns, sha256, virshAt } from './run.js';

/**
 * The day-2 operations of seed 003 end to end on real libvirt + qemu (TCG) in a network namespace,
 * on two demo guests: ssh through the pinned keys, snapshots as a stack (save, revert brings a
 * deleted file back, delete in the middle), stop by ACPI and start, a killed stop finished by a
 * re-run, ssh-config used by plain OpenSSH, and a golden image that stays byte-identical.
 */
const gate = requireTestbed('the KVM day-2 end-to-end tests', {
  root: true,
  commands: ['virsh', 'libvirtd', 'qemu-system-x86_64', 'qemu-img', 'ip', 'ssh'],
});
// One namespace per run: two runs on one machine (or one killed mid-way) never share a bridge.
const NETNS = `labctl-kvm-d2-${process.pid}`;
const PREFIX = '10.84.0';

let root: string;
let bed: string;
let guest: string;
let uri: string;
let labDir: string;
let goldenSum: string;

function labctl(args: string[], timeoutMs = 400_000): Promise<Run> {
  return runInNetns(
    NETNS,
    // After the command's words and before any `--` (what follows it is the remote command of ssh).
    [process.execPath, bin, ...withLabDir(args)],
    { ...process.env, LIBVIRT_DEFAULT_URI: uri },
    timeoutMs,
  );
}

function withLabDir(args: string[]): string[] {
  const dashes = args.indexOf('--');
  return dashes < 0
    ? [...args, '--lab-dir', labDir]
    : [...args.slice(0, dashes), '--lab-dir', labDir, ...args.slice(dashes)];
}

async function json(args: string[]): Promise<{ code: number; data: any; stderr: string }> {
  const run = await labctl([...args, '--json']);
  let data: unknown;
  try {
    data = JSON.parse(run.stdout);
  } catch {
    data = run.stdout;
  }
  return { code: run.code, data, stderr: run.stderr };
}

/** `labctl ssh NAME -- COMMAND`: what a user types, output and exit status. */
async function onVm(name: string, command: string): Promise<{ code: number; out: string }> {
  const run = await labctl(['ssh', name, '--', command], 60_000);
  return { code: run.code, out: run.stdout };
}

describe.skipIf(gate.skip)(`KVM: day-2 operations (${gate.reason ?? 'root, libvirt, qemu'})`, () => {
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'labctl-kvm-d2-'));
    bed = join(root, 'bed');
    guest = join(root, 'guest');
    execFileSync(join(repo, 'scripts/guest/build-guest.sh'), [guest], { stdio: 'ignore' });
    const env = execFileSync(join(repo, 'scripts/testbed/kvm-up.sh'), [bed], {
      encoding: 'utf8',
      env: { ...process.env, KVM_NETNS: NETNS, KVM_SUBNET: `${PREFIX}.0/24`, KVM_DHCP_START: '100', KVM_BRIDGE: 'labd2br0' },
    });
    uri = /^LIBVIRT_URI='([^']+)'/m.exec(env)![1]!;
    labDir = join(root, 'lab');
    await mkdir(labDir, { recursive: true });
    await writeFile(
      join(labDir, 'labctl.yaml'),
      [
        'lab: day2',
        'defaults:',
        '  memory: 128',
        // qcow2: QEMU saves a running VM's memory only on chains without VHD/VHDX (group v checks the refusal).
        `  golden: ${guest}/golden.qcow2`,
        `  kernel: ${guest}/vmlinux`,
        `  initrd: ${guest}/initrd-boot.gz`,
        '  cmdline: console=ttyS0 quiet panic=-1',
        `  network: { name: labnet, prefix: 24, gateway: ${PREFIX}.1 }`,
        `  ssh: { user: root, keyFile: ${guest}/id_ed25519 }`,
        'groups:',
        `  d: { count: 2, network: { addresses: ${PREFIX}.20-${PREFIX}.21 } }`,
        `  v: { count: 1, golden: ${guest}/golden.vhd, network: { addresses: ${PREFIX}.30-${PREFIX}.30 } }`,
      ].join('\n'),
    );
    goldenSum = sha256(join(guest, 'golden.qcow2')) + sha256(join(guest, 'golden.vhd'));
    const made = await labctl(['create', '--timeout', '300', '--json']);
    expect(made.code, made.stderr).toBe(0);
  }, 900_000);

  afterAll(async () => {
    if (!bed) return;
    removeAllDomains(uri);
    execFileSync(join(repo, 'scripts/testbed/kvm-down.sh'), [bed], { stdio: 'ignore', timeout: 120_000 });
    await rm(root, { recursive: true, force: true });
  });

  it('ssh reaches each VM by name with its pinned key and returns the remote exit status; --print gives the command line', async () => {
    expect(await onVm('d-01', 'hostname')).toEqual({ code: 0, out: 'd-01\n' });
    expect(await onVm('d-02', 'hostname')).toEqual({ code: 0, out: 'd-02\n' });
    expect((await onVm('d-01', 'exit 7')).code).toBe(7);
    const printed = await labctl(['ssh', 'd-02', '--print']);
    expect(printed.stdout).toMatch(/^ssh .*-o StrictHostKeyChecking=yes -o HostKeyAlias=d-02 .*-- 10\.84\.0\.21\n$/);
    // A VM the lab does not have: a usage error before anything runs.
    const unknown = await labctl(['ssh', 'nope-01', '--', 'true']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/no VM named nope-01/);
    // Plain OpenSSH through `labctl ssh-config`, strictly checked against the same pins.
    const config = await labctl(['ssh-config']);
    expect(config.code, config.stderr).toBe(0);
    await writeFile(join(root, 'ssh_config'), config.stdout);
    const plain = await runInNetns(NETNS, ['ssh', '-F', join(root, 'ssh_config'), '-o', 'BatchMode=yes', 'd-02', 'hostname'], process.env, 30_000);
    expect(plain).toMatchObject({ code: 0, stdout: 'd-02\n' });
  });

  it('snapshots are a stack: revert brings a deleted file back; a middle snapshot is deleted; the golden image is never written', async () => {
    expect((await onVm('d-01', 'echo kept > /root/marker && sync')).code).toBe(0);
    expect((await onVm('d-02', 'echo kept > /root/marker && sync')).code).toBe(0);
    const saved = await json(['snapshot', 'save', 'd-01', 'd-02']);
    expect(saved.code, JSON.stringify(saved.data)).toBe(0);
    expect(saved.data.vms.map((vm: any) => [vm.name, vm.ok, vm.facts.snapshot])).toEqual([
      ['d-01', true, 'snap-1'],
      ['d-02', true, 'snap-1'],
    ]);
    expect((await onVm('d-01', 'rm /root/marker && sync')).code).toBe(0);
    expect((await onVm('d-01', 'test -e /root/marker')).code).toBe(1);
    const reverted = await json(['snapshot', 'revert', 'd-01']);
    expect(reverted.code, reverted.stderr).toBe(0);
    expect(reverted.data.vms[0].facts).toMatchObject({ snapshot: 'snap-1', state: 'running' });
    expect(await onVm('d-01', 'cat /root/marker')).toEqual({ code: 0, out: 'kept\n' });

    for (const expected of ['snap-2', 'snap-3']) {
      const next = await json(['snapshot', 'save', 'd-01']);
      expect(next.data.vms[0].facts.snapshot).toBe(expected);
    }
    const deleted = await json(['snapshot', 'delete', 'd-01', '--name', 'snap-2']);
    expect(deleted.code, deleted.stderr).toBe(0);
    const listed = await json(['snapshot', 'list', 'd-01']);
    expect(listed.data.vms[0].facts.snapshots.map((s: any) => [s.name, s.parent ?? null])).toEqual([
      ['snap-1', null],
      ['snap-3', 'snap-1'],
    ]);
    expect(virshAt(uri, 'snapshot-list', 'd-01', '--name').split('\n').filter(Boolean).sort()).toEqual(['snap-1', 'snap-3']);
    // Reverting to a snapshot that is not there: the VM's failure, named, exit 1.
    const missing = await json(['snapshot', 'revert', 'd-02', '--name', 'snap-9']);
    expect(missing.code).toBe(1);
    expect(missing.data.vms[0].error.message).toMatch(/no snapshot named snap-9/);
    // Bad input is refused before anything changes (exit 2).
    expect((await labctl(['snapshot', 'save', 'd-01', '--name', '../x'])).code).toBe(2);
    expect(sha256(join(guest, 'golden.qcow2')) + sha256(join(guest, 'golden.vhd'))).toBe(goldenSum);
  });

  it('stop shuts the guests down by ACPI (status shows it), a killed stop is finished by a re-run, start brings SSH back with the disk as it was', async () => {
    // A running VM on a VHD golden image cannot keep its memory in a snapshot: refused with what to do.
    const refused = await json(['snapshot', 'save', 'v-01']);
    expect(refused.code).toBe(1);
    expect(refused.data.vms[0].error).toMatchObject({ code: 'SNAPSHOT_NEEDS_STOP' });
    expect(refused.data.vms[0].error.hint).toMatch(/labctl stop v-01/);
    // Kill a stop mid-way; the re-run finishes it and a further run is a no-op.
    const child = spawn('ip', ['netns', 'exec', NETNS, process.execPath, bin, 'stop', '--all', '--lab-dir', labDir], {
      env: { ...process.env, LIBVIRT_DEFAULT_URI: uri },
      stdio: 'ignore',
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('exit', resolve));
    const stopped = await json(['stop', '--all']);
    expect(stopped.code, JSON.stringify(stopped.data)).toBe(0);
    for (const vm of stopped.data.vms) expect(vm.facts.forced, vm.name).toBe(false);
    for (const name of domainsAt(uri)) expect(virshAt(uri, 'domstate', name).trim()).toBe('shut off');
    const again = await json(['stop', '--all']);
    expect(again.data.vms.map((vm: any) => vm.facts.stopped)).toEqual([false, false, false]);
    const status = await json(['status']);
    expect(status.data.vms.map((vm: any) => [vm.name, vm.state, vm.live])).toEqual([
      ['d-01', 'stopped', 'stopped'],
      ['d-02', 'stopped', 'stopped'],
      ['v-01', 'stopped', 'stopped'],
    ]);
    // Stopped, the VHD-backed VM's snapshot holds its disk.
    const offline = await json(['snapshot', 'save', 'v-01']);
    expect(offline.code, JSON.stringify(offline.data)).toBe(0);
    expect(offline.data.vms[0].facts).toMatchObject({ snapshot: 'snap-1', state: 'stopped' });

    const started = await json(['start', 'd-01']);
    expect(started.code, JSON.stringify(started.data)).toBe(0);
    expect(started.data.ssh.vms[0]).toMatchObject({ name: 'd-01', status: 'reachable' });
    expect(await onVm('d-01', 'cat /root/marker')).toEqual({ code: 0, out: 'kept\n' });
    // ssh to a stopped VM fails as ssh does (255), never by accepting another key.
    expect((await onVm('d-02', 'true')).code).toBe(255);
  });

  it('clone makes a VM with its own name, address and host key on a frozen base; a running source is refused', async () => {
    const running = await labctl(['clone', 'd-01', 'x-01']);
    expect(running.code).toBe(2);
    expect(running.stderr).toMatch(/d-01 is running/);
    const cloned = await json(['clone', 'd-02', 'd-03']);
    expect(cloned.code, JSON.stringify(cloned.data)).toBe(0);
    expect(cloned.data).toMatchObject({ source: 'd-02', name: 'd-03', mode: 'linked' });
    const base = cloned.data.base as string;
    expect(base).toBe(join(labDir, '.labctl', 'disks', 'd-03.base.qcow2'));
    expect(JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', base], { encoding: 'utf8' }))['backing-filename']).toBe(
      join(guest, 'golden.qcow2'),
    );
    const vms = JSON.parse(await readFile(join(labDir, '.labctl', 'state.json'), 'utf8')).vms as any[];
    const source = vms.find((vm) => vm.name === 'd-02');
    const clone = vms.find((vm) => vm.name === 'd-03');
    expect(clone.state).toBe('running');
    expect(clone.mac).not.toBe(source.mac);
    expect(clone.ssh.hostKeys[0]).toMatch(/^ssh-ed25519 /);
    expect(clone.ssh.hostKeys).not.toEqual(source.ssh.hostKeys);
    expect(clone.addresses[0]).not.toBe(source.assignedAddress);
    // Its own identity, and the source's files (its disk was copied, not shared).
    expect(await onVm('d-03', 'hostname; cat /etc/labctl-instance-id /root/marker')).toEqual({
      code: 0,
      out: `d-03\n${clone.instanceId}\nkept\n`,
    });
    expect(virshAt(uri, 'domstate', 'd-02').trim()).toBe('shut off');

    // A full clone of a snapshot of a running VM, left stopped: its base is standalone (no backing file).
    const full = await json(['clone', 'd-01', 'd-04', '--full', '--from-snapshot', 'snap-1', '--no-start']);
    expect(full.code, JSON.stringify(full.data)).toBe(0);
    expect(JSON.parse(execFileSync('qemu-img', ['info', '-U', '--output=json', full.data.base], { encoding: 'utf8' }))['backing-filename']).toBeUndefined();
    expect(virshAt(uri, 'domstate', 'd-04').trim()).toBe('shut off');
  });

  it('template capture of a stopped VM gives a standalone golden disk that create boots from; a killed capture is finished by a re-run', async () => {
    const output = join(root, 'golden-v2.qcow2');
    const busy = await labctl(['template', 'capture', 'd-01', '-o', output]);
    expect(busy.code).toBe(2);
    expect(busy.stderr).toMatch(/d-01 is running/);
    const child = spawn('ip', ['netns', 'exec', NETNS, process.execPath, bin, 'template', 'capture', 'd-02', '-o', output, '--lab-dir', labDir], {
      env: { ...process.env, LIBVIRT_DEFAULT_URI: uri },
      stdio: 'ignore',
    });
    await new Promise((resolve) => setTimeout(resolve, 700));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.on('exit', resolve));
    const captured = await json(['template', 'capture', 'd-02', '-o', output, '--force']);
    expect(captured.code, JSON.stringify(captured.data)).toBe(0);
    expect(captured.data).toMatchObject({ vm: 'd-02', format: 'qcow2', path: output });
    expect(captured.data.sha256).toBe(sha256(output));
    expect((await readdir(root)).filter((file) => file.includes('labctl-partial'))).toEqual([]);
    const info = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', output], { encoding: 'utf8' }));
    expect(info['backing-filename']).toBeUndefined();
    const again = await labctl(['template', 'capture', 'd-02', '-o', output]);
    expect(again.code).toBe(2);
    const made = await json(['create', '--group', 'w', '--new-group', '--count', '1', '--golden', output, '--timeout', '300']);
    expect(made.code, JSON.stringify(made.data)).toBe(0);
    expect(await onVm('w-01', 'hostname; cat /root/marker')).toEqual({ code: 0, out: 'w-01\nkept\n' });
  });

  it('export, destroy, import gives back a VM that boots with its identity; OVA: OVF first, well-formed, streamOptimized VMDK; a tampered bundle is refused', async () => {
    const out = join(root, 'exports');
    const busy = await labctl(['export', 'd-01', '-o', out]);
    expect(busy.code).toBe(2);
    expect(busy.stderr).toMatch(/stop these VMs.*d-01/);
    const exported = await json(['export', 'd-02', '-o', out]);
    expect(exported.code, JSON.stringify(exported.data)).toBe(0);
    expect(exported.data.vms[0].facts).toMatchObject({ written: true, format: 'bundle' });
    const bundle = join(out, 'd-02');
    expect(execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: bundle, encoding: 'utf8' })).toMatch(/disk.qcow2: OK[\s\S]*vm.json: OK/);
    expect((await json(['export', 'd-02', '-o', out])).data.vms[0].facts.written).toBe(false);

    const ova = await json(['export', 'd-02', '-o', out, '--format', 'ova']);
    expect(ova.code, JSON.stringify(ova.data)).toBe(0);
    const packed = join(out, 'd-02.ova');
    expect(execFileSync('tar', ['tf', packed], { encoding: 'utf8' }).split('\n').filter(Boolean)).toEqual([
      'd-02.ovf',
      'd-02-disk1.vmdk',
      'd-02.mf',
    ]);
    const unpacked = join(root, 'ova');
    await mkdir(unpacked);
    execFileSync('tar', ['xf', packed, '-C', unpacked]);
    execFileSync('xmllint', ['--noout', join(unpacked, 'd-02.ovf')]);
    const vmdk = JSON.parse(execFileSync('qemu-img', ['info', '--output=json', join(unpacked, 'd-02-disk1.vmdk')], { encoding: 'utf8' }));
    expect(vmdk.format).toBe('vmdk');
    expect(vmdk['format-specific'].data['create-type']).toBe('streamOptimized');
    expect(await readFile(join(unpacked, 'd-02.mf'), 'utf8')).toContain(`SHA256(d-02-disk1.vmdk)= ${sha256(join(unpacked, 'd-02-disk1.vmdk'))}`);

    const before = JSON.parse(await readFile(join(labDir, '.labctl', 'state.json'), 'utf8')).vms.find((vm: any) => vm.name === 'd-02');
    expect((await labctl(['destroy', 'd-02'])).code).toBe(0);
    expect(domainsAt(uri)).not.toContain('d-02');
    // A bundle changed after export is refused before anything changes.
    const bad = join(root, 'bad');
    execFileSync('cp', ['-a', bundle, bad]);
    await writeFile(join(bad, 'vm.json'), (await readFile(join(bad, 'vm.json'), 'utf8')).replace('"cpus": 1', '"cpus": 2'));
    const refused = await labctl(['import', bad]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/vm.json does not match its SHA-256/);
    expect(domainsAt(uri)).not.toContain('d-02');

    const restored = await json(['import', bundle]);
    expect(restored.code, JSON.stringify(restored.data)).toBe(0);
    expect(restored.data).toMatchObject({ name: 'd-02', mac: before.mac, state: 'created', instanceId: before.instanceId });
    expect(restored.data.ssh.hostKeys).toEqual(before.ssh.hostKeys);
    expect(virshAt(uri, 'domstate', 'd-02').trim()).toBe('shut off');
    expect((await labctl(['import', bundle])).code).toBe(2);
    const started = await json(['start', 'd-02']);
    expect(started.code, JSON.stringify(started.data)).toBe(0);
    expect(await onVm('d-02', 'hostname; cat /root/marker')).toEqual({ code: 0, out: 'd-02\nkept\n' });
  });

  it('destroy removes VMs with their snapshots and leaves no disk; the golden image is byte-identical', async () => {
    const gone = await labctl(['destroy', '--all', '--json']);
    expect(gone.code, gone.stderr).toBe(0);
    expect(domainsAt(uri)).toEqual([]);
    const left = (await readdir(join(labDir, '.labctl'), { recursive: true })).filter((file) => /\.(qcow2|iso)$/.test(String(file)));
    // No overlay, seed or clone base is left.
    expect(left).toEqual([]);
    expect(sha256(join(guest, 'golden.qcow2')) + sha256(join(guest, 'golden.vhd'))).toBe(goldenSum);
  });
});
