import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, domainsAt, removeAllDomains, type Run, repo, runInNetns, sha256, virshAt } from './run.js';

/**
 * The libvirt provider through a remote URI, for real: the test bed's libvirtd (scripts/testbed/kvm-up.sh,
 * in a network namespace of this test's own) reached only through an OpenSSH server on 127.0.0.1 in
 * that namespace (scripts/testbed/libvirt-ssh.sh), as `qemu+ssh://root@127.0.0.1:PORT/system?socket=...`.
 *
 * The "remote host" is the libvirtd's own view of the file system: the golden image, kernel and initrd
 * are at /var/lib/libvirt/labctl-golden/, a path that exists only inside the daemon's mount namespace
 * (the test bed binds STATE_DIR/lib over /var/lib/libvirt there), so labctl can only reach them through
 * libvirt. VM disks go to the host's storage pool `default`. The host key is pinned: labctl runs with a
 * home of its own whose ~/.ssh/known_hosts holds the sshd's key (OpenSSH's check; labctl adds no
 * StrictHostKeyChecking=no and no no_verify), and qemu+libssh:// is checked against known_hosts=.
 */
const gate = requireTestbed('the remote libvirt (qemu+ssh) end-to-end tests', {
  root: true,
  commands: ['virsh', 'libvirtd', 'qemu-system-x86_64', 'sshd', 'ssh', 'nc', 'ip'],
});
// One namespace per run: two runs on one machine (or one killed mid-way) never share a bridge.
const NETNS = `labctl-kvm-remote-${process.pid}`;
const SUBNET = '10.87.0.0/24';
const PORT = 2231;
/** The golden image's directory as the libvirt host sees it. */
const REMOTE_GOLDEN_DIR = '/var/lib/libvirt/labctl-golden';

let root: string;
let bed: string;
let sshDir: string;
let home: string;
let guest: string;
let sshUri: string;
let libsshUri: string;
let labDir: string;
let goldenFile: string;
let goldenSum: string;
let localUri: string;

/**
 * labctl inside the netns, with `home` bound over the user's home directory in that command's own
 * mount namespace (ip netns exec makes one): OpenSSH reads ~/.ssh/known_hosts from the password
 * database's home, not $HOME, and this machine's real one is never read or written.
 */
function labctl(args: string[], dir = labDir, timeoutMs = 300_000): Promise<Run> {
  return runInNetns(
    NETNS,
    ['sh', '-c', 'mount --bind "$1" "$2" && shift 2 && exec "$@"', 'sh', home, userInfo().homedir, process.execPath, bin, ...args, '--lab-dir', dir],
    { ...process.env, XDG_CACHE_HOME: join(root, 'cache'), CI: process.env.CI ?? '' },
    timeoutMs,
  );
}

/** The test's own look at the host, through the local socket (not through labctl's path). */
function virsh(...args: string[]): string {
  return virshAt(localUri, ...args);
}

function domains(): string[] {
  return domainsAt(localUri);
}

/** Files in the host's `default` pool directory, and the volumes libvirt knows there. */
function poolFiles(): string[] {
  return readdirSync(join(bed, 'lib', 'images')).sort();
}

function poolVolumes(): string[] {
  virsh('pool-refresh', 'default');
  return virsh('vol-list', 'default')
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0]!)
    .filter(Boolean)
    .sort();
}

async function state(): Promise<{ vms: Array<{ name: string; state: string; host: string; addresses: string[]; ssh: { hostKeys: string[] }; resources: { disk: string; consoleLog: string } }> }> {
  return JSON.parse(await readFile(join(labDir, '.labctl', 'state.json'), 'utf8'));
}

describe.skipIf(gate.skip)('labctl on a remote libvirt host (qemu+ssh:// through sshd on 127.0.0.1)', () => {
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'labctl-kvm-remote-'));
    bed = join(root, 'bed');
    sshDir = join(root, 'ssh');
    guest = join(tmpdir(), 'labctl-kvm-remote-guest');
    execFileSync(join(repo, 'scripts/guest/build-guest.sh'), [guest], { stdio: 'ignore' });
    const env = execFileSync(join(repo, 'scripts/testbed/kvm-up.sh'), [bed], { encoding: 'utf8', env: { ...process.env, KVM_NETNS: NETNS, KVM_SUBNET: SUBNET } });
    localUri = /^LIBVIRT_URI='([^']+)'/m.exec(env)![1]!;

    // The host's side, set up as its administrator would: a read-only golden image (with the kernel
    // and initrd for direct boot) in a storage pool of its own, and the standard pool `default`.
    const goldenDir = join(bed, 'lib', 'labctl-golden');
    await mkdir(goldenDir, { recursive: true });
    await mkdir(join(bed, 'lib', 'images'), { recursive: true });
    for (const file of ['golden.vhd', 'vmlinux', 'initrd-boot.gz']) {
      copyFileSync(join(guest, file), join(goldenDir, file));
      chmodSync(join(goldenDir, file), 0o444);
    }
    goldenFile = join(goldenDir, 'golden.vhd');
    goldenSum = sha256(goldenFile);
    virsh('pool-define-as', 'labctl-golden', 'dir', '--target', REMOTE_GOLDEN_DIR);
    virsh('pool-start', 'labctl-golden');
    virsh('pool-define-as', 'default', 'dir', '--target', '/var/lib/libvirt/images');
    virsh('pool-start', 'default');

    const ssh = execFileSync(join(repo, 'scripts/testbed/libvirt-ssh.sh'), ['up', sshDir, NETNS, String(PORT), bed], { encoding: 'utf8' });
    sshUri = /^LIBVIRT_SSH_URI='([^']+)'/m.exec(ssh)![1]!;
    libsshUri = /^LIBVIRT_LIBSSH_URI='([^']+)'/m.exec(ssh)![1]!;
    home = join(root, 'home');
    await mkdir(join(home, '.ssh'), { recursive: true, mode: 0o700 });
    copyFileSync(join(sshDir, 'known_hosts'), join(home, '.ssh', 'known_hosts'));

    labDir = join(root, 'lab');
    await mkdir(labDir, { recursive: true });
    await writeFile(
      join(labDir, 'labctl.yaml'),
      [
        'lab: remote',
        'provider: libvirt',
        `uri: "${sshUri}"`,
        'defaults:',
        `  golden: ${REMOTE_GOLDEN_DIR}/golden.vhd`,
        `  kernel: ${REMOTE_GOLDEN_DIR}/vmlinux`,
        `  initrd: ${REMOTE_GOLDEN_DIR}/initrd-boot.gz`,
        '  cmdline: console=ttyS0 quiet panic=-1',
        '  memory: 128',
        '  network: labnet',
        `  ssh: { user: root, keyFile: ${guest}/id_ed25519 }`,
      ].join('\n'),
    );
  }, 180_000);

  afterAll(async () => {
    if (!bed) return;
    removeAllDomains(localUri);
    if (sshDir) execFileSync(join(repo, 'scripts/testbed/libvirt-ssh.sh'), ['down', sshDir], { stdio: 'ignore' });
    execFileSync(join(repo, 'scripts/testbed/kvm-down.sh'), [bed], { stdio: 'ignore', timeout: 120_000 });
    await rm(root, { recursive: true, force: true });
  }, 180_000);

  it('refuses, before creating anything: a golden image in no storage pool of the host, and a libvirt host whose SSH key is not the pinned one', async () => {
    // The golden path is the host's: this machine has no such file, and labctl must not look for one here.
    expect(existsSync(`${REMOTE_GOLDEN_DIR}/golden.vhd`)).toBe(false);

    const unpooled = await labctl(['create', '--count', '2', '--golden', '/var/lib/libvirt/nowhere/golden.vhd', '--json']);
    expect(unpooled.code, unpooled.stderr).toBe(2);
    expect(JSON.parse(unpooled.stdout).error.message).toMatch(/golden\.vhd is not a volume of any active storage pool at qemu\+ssh:\/\//);

    // Wrong pinned key, OpenSSH transport: ~/.ssh/known_hosts holds another key for [127.0.0.1]:PORT.
    const saved = join(home, '.ssh', 'known_hosts');
    copyFileSync(join(sshDir, 'wrong_known_hosts'), saved);
    try {
      const wrong = await labctl(['create', '--count', '2', '--json']);
      expect(wrong.code).toBe(2);
      expect(JSON.parse(wrong.stdout).error.message).toMatch(/Host key verification failed/);
    } finally {
      copyFileSync(join(sshDir, 'known_hosts'), saved);
    }
    // Wrong pinned key, libssh transport: known_hosts= in the URI.
    const wrongLibssh = await labctl(['create', '--count', '2', '--uri', libsshUri.replace(`${sshDir}/known_hosts`, `${sshDir}/wrong_known_hosts`), '--json']);
    expect(wrongLibssh.code).toBe(2);
    expect(JSON.parse(wrongLibssh.stdout).error.message).toMatch(/HOST KEY VERIFICATION FAILED|host key/i);

    expect(domains()).toEqual([]);
    expect(poolVolumes()).toEqual([]);
  });

  it('creates 2 VMs through qemu+ssh://: disks are volumes of the host\'s pool on the read-only golden image, both VMs answer SSH', async () => {
    // A disk left behind by an interrupted run (not even known to the pool yet): replaced, not refused.
    await writeFile(join(bed, 'lib', 'images', 'vm-01.qcow2'), 'left over');

    const logins = () => (readFileSync(join(sshDir, 'sshd.log'), 'utf8').match(/Accepted publickey/g) ?? []).length;
    const before = logins();
    const run = await labctl(['create', '--count', '2', '--timeout', '180', '--inventory', join(labDir, 'hosts.ini'), '--json']);
    console.log(`remote create --count 2: ${run.ms} ms, ${logins() - before} SSH logins to the libvirt host`);
    // Every virsh call of the run shares OpenSSH connections (labctl's command= wrapper, ControlMaster):
    // a few logins for the calls that start together before the first connection is up, not one per call.
    if (process.env.LABCTL_SSH_MUX !== '0') expect(logins() - before).toBeLessThanOrEqual(4);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.counts).toMatchObject({ planned: 2, created: 2, failed: 0, reachable: 2 });
    const names = ['vm-01', 'vm-02'];
    expect(domains()).toEqual(names);

    // Everything the VMs own is on the host, in its pool; locally only the domain XML handed to virsh.
    expect(poolFiles()).toEqual(['vm-01.console.log', 'vm-01.qcow2', 'vm-01.seed.iso', 'vm-02.console.log', 'vm-02.qcow2', 'vm-02.seed.iso']);
    // Each seed went up with vol-upload over the same connection: the whole ISO, readable by root only.
    const seed = join(bed, 'lib', 'images', 'vm-01.seed.iso');
    expect(execFileSync('stat', ['-c', '%a', seed], { encoding: 'utf8' }).trim()).toBe('600');
    expect(readFileSync(seed).subarray(32769, 32774).toString('latin1')).toBe('CD001');
    expect(readdirSync(join(labDir, '.labctl', 'disks')).filter((file) => !file.endsWith('.xml'))).toEqual([]);
    for (const name of names) {
      const volume = virsh('vol-dumpxml', '--pool', 'default', `${name}.qcow2`);
      expect(volume).toMatch(/<backingStore>\s*<path>\/var\/lib\/libvirt\/labctl-golden\/golden\.vhd<\/path>\s*<format type='vpc'\/>/);
      expect(volume).toMatch(/<format type='qcow2'\/>/);
    }
    expect(execFileSync('qemu-img', ['info', '-U', join(bed, 'lib', 'images', 'vm-01.qcow2')], { encoding: 'utf8' })).toMatch(/backing file format: vpc/);

    const saved = await state();
    for (const vm of saved.vms) {
      expect(vm.state).toBe('running');
      expect(vm.host).toBe(sshUri);
      expect(vm.addresses[0]).toMatch(/^10\.87\.0\.\d+$/);
      expect(vm.ssh.hostKeys[0]).toMatch(/^ssh-ed25519 AAAA/);
      expect(vm.resources.disk).toBe(`/var/lib/libvirt/images/${vm.name}.qcow2`);
      expect(vm.resources.consoleLog).toBe(`/var/lib/libvirt/images/${vm.name}.console.log`);
    }
    // Into each VM with the host key labctl recorded, strictly checked.
    for (const vm of saved.vms) {
      const hostname = execFileSync(
        'ip',
        ['netns', 'exec', NETNS, 'ssh', '-i', join(guest, 'id_ed25519'), '-o', `UserKnownHostsFile=${join(labDir, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', `HostKeyAlias=${vm.name}`, `root@${vm.addresses[0]}`, 'hostname'],
        { encoding: 'utf8', timeout: 30_000 },
      );
      expect(hostname.trim()).toBe(vm.name);
    }
  });

  it('a re-run through qemu+libssh:// (host key from known_hosts=) keeps both VMs and creates nothing', async () => {
    const run = await labctl(['create', '--count', '2', '--uri', libsshUri, '--timeout', '120', '--json']);
    console.log(`remote create --count 2 again (libssh): ${run.ms} ms`);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(JSON.parse(run.stdout).counts).toMatchObject({ planned: 2, created: 0, kept: 2, reachable: 2 });
    expect(domains()).toEqual(['vm-01', 'vm-02']);
  });

  it('destroy --all removes the domains and their volumes, never the golden image, which stays byte-identical and read-only', async () => {
    const run = await labctl(['destroy', '--all', '--json']);
    console.log(`remote destroy --all: ${run.ms} ms`);
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(domains()).toEqual([]);
    expect(poolFiles()).toEqual([]);
    expect(poolVolumes()).toEqual([]);
    expect(sha256(goldenFile)).toBe(goldenSum);
    expect(statSync(goldenFile).mode & 0o777).toBe(0o444);
    expect(virsh('vol-list', 'labctl-golden')).toMatch(/golden\.vhd/);

    const again = await labctl(['destroy', '--all', '--json']);
    expect(again.code, again.stderr).toBe(0);
  });
});
