import { execFile, execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, domainsAt, removeAllDomains, type Run, repo, sha256 } from './run.js';

/**
 * A lab behind a bastion, as an admin whose VMs live on a network only a jump host reaches: the VMs
 * are on the bridge of a KVM test bed's network namespace, an sshd bastion runs in that namespace,
 * and labctl runs *outside* it, where the VMs' subnet is an unreachable route. `ssh.proxyJump` in the
 * lab file takes create's SSH probe, `ip --wait`, `labctl ssh` and Ansible through the bastion, with
 * every VM's key pinned end to end and the bastion's key checked against the user's known_hosts (here
 * a test ssh_config given as LABCTL_SSH_CONFIG, labctl's `ssh -F`).
 */
const gate = requireTestbed('the KVM end-to-end test through a jump host', {
  root: true,
  commands: ['virsh', 'libvirtd', 'qemu-system-x86_64', 'qemu-img', 'ansible', 'ip', 'sshd', 'unshare'],
});
const NETNS = `labctl-kvm-jump-${process.pid}`;
const PREFIX = '10.86.0';
const LINK = `10.254.${process.pid % 250}`;
const VETH = `ljk${process.pid % 100000}`;
const run = promisify(execFile);

let root: string;
let bed: string;
let hosts: string;
let guest: string;
let uri: string;
let labDir: string;
let sshConfig: string;

function labctl(args: string[], timeoutMs = 300_000): Promise<Run> {
  const started = Date.now();
  return new Promise((done) => {
    execFile(
      process.execPath,
      [bin, ...args],
      {
        // The lab by environment: words after `labctl ssh NAME --` are the remote command's.
        env: { ...process.env, LIBVIRT_DEFAULT_URI: uri, LABCTL_SSH_CONFIG: sshConfig, LABCTL_LAB_DIR: labDir },
        timeout: timeoutMs,
        maxBuffer: 16 << 20,
      },
      (error, stdout, stderr) => {
        const code = error ? ((error as { code?: number }).code ?? 1) : 0;
        done({ code: typeof code === 'number' ? code : 1, stdout, stderr, ms: Date.now() - started });
      },
    );
  });
}

describe.skipIf(gate.skip)("a lab behind a bastion (ssh.proxyJump), labctl outside the VMs' network", () => {
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'labctl-kvm-jump-'));
    bed = join(root, 'bed');
    // Its own temporary directory: sshd reads authorized keys as the test user, through every
    // parent directory (the 0700 root would stop it).
    hosts = await mkdtemp(join(tmpdir(), 'labctl-kvm-jump-hosts-'));
    guest = join(tmpdir(), 'labctl-kvm-e2e-guest');
    execFileSync(join(repo, 'scripts/guest/build-guest.sh'), [guest], { stdio: 'ignore' });
    const env = execFileSync(join(repo, 'scripts/testbed/kvm-up.sh'), [bed], {
      encoding: 'utf8',
      env: { ...process.env, KVM_NETNS: NETNS, KVM_SUBNET: `${PREFIX}.0/24`, KVM_BRIDGE: 'labjbr0' },
    });
    uri = /^LIBVIRT_URI='([^']+)'/m.exec(env)![1]!;
    // This namespace reaches the bed's namespace on a /30 of its own; the VMs' subnet is unreachable
    // from here (no packet for it leaves the machine).
    execFileSync('sh', [
      '-ec',
      `ip link add ${VETH} type veth peer name jb netns ${NETNS}
       ip addr add ${LINK}.1/30 dev ${VETH}; ip link set ${VETH} up
       ip -n ${NETNS} addr add ${LINK}.2/30 dev jb; ip -n ${NETNS} link set jb up
       ip route replace unreachable ${PREFIX}.0/24`,
    ]);
    // The bastion: an sshd in the bed's namespace, on the /30.
    await run('sh', ['-c', '"$0" up "$1" 1 22320 > "$1/up.log" 2>&1', join(repo, 'scripts/testbed/ssh-hosts.sh'), hosts], {
      env: { ...process.env, SSH_HOSTS_NETNS_1: NETNS, SSH_HOSTS_ADDR_1: `${LINK}.2` },
    });
    sshConfig = join(root, 'ssh_config');
    await writeFile(
      sshConfig,
      [
        'Host bastion',
        `  HostName ${LINK}.2`,
        '  Port 22321',
        '  User labctl-np',
        `  IdentityFile ${join(hosts, 'client', 'id_ed25519')}`,
        `  UserKnownHostsFile ${join(hosts, 'known_hosts')}`,
        '  StrictHostKeyChecking yes',
        '',
      ].join('\n'),
    );
    labDir = join(root, 'lab');
    await mkdir(labDir);
    await writeFile(
      join(labDir, 'labctl.yaml'),
      [
        'lab: behind',
        'defaults:',
        '  memory: 128',
        '  network: labnet',
        `  golden: ${guest}/golden.vhd`,
        `  kernel: ${guest}/vmlinux`,
        `  initrd: ${guest}/initrd-boot.gz`,
        '  cmdline: console=ttyS0 quiet panic=-1',
        `  ssh: { user: root, keyFile: ${guest}/id_ed25519, proxyJump: bastion }`,
        'inventory:',
        `  vars: { ansible_ssh_common_args: "-F ${sshConfig}" }`,
        '',
      ].join('\n'),
    );
  });

  afterAll(async () => {
    if (!bed) return;
    removeAllDomains(uri);
    await run('sh', [
      '-c',
      '"$0" down "$1" > /dev/null 2>&1',
      join(repo, 'scripts/testbed/ssh-hosts.sh'),
      hosts,
    ]).catch(() => undefined);
    execFileSync('sh', ['-c', `ip route del unreachable ${PREFIX}.0/24; ip link del ${VETH}; true`]);
    execFileSync(join(repo, 'scripts/testbed/kvm-down.sh'), [bed], { stdio: 'ignore', timeout: 120_000 });
    await rm(root, { recursive: true, force: true });
    await rm(hosts, { recursive: true, force: true });
  });

  it('create reaches its VMs only through the bastion: SSH answers with the pinned keys', async () => {
    const direct = await run('bash', ['-c', `exec 3<>/dev/tcp/${PREFIX}.1/22`]).catch(
      (error: { stderr: string }) => error,
    );
    expect((direct as { stderr: string }).stderr).toMatch(/No route to host|unreachable/i);
    const created = await labctl(['create', '--count', '2', '--timeout', '240', '--json']);
    console.log(`create --count 2 through a bastion: ${created.ms} ms`);
    expect(created.code, created.stdout + created.stderr).toBe(0);
    expect(JSON.parse(created.stdout).counts).toMatchObject({ created: 2, failed: 0, reachable: 2 });
    expect(domainsAt(uri)).toEqual(['vm-01', 'vm-02']);
    const state = JSON.parse(await readFile(join(labDir, '.labctl', 'state.json'), 'utf8')) as {
      vms: Array<{ ssh: { proxyJump?: string; hostKeys: string[] }; addresses: string[] }>;
    };
    for (const vm of state.vms) {
      expect(vm.ssh.proxyJump).toBe('bastion');
      expect(vm.addresses[0]).toMatch(new RegExp(`^${PREFIX.replaceAll('.', '\\.')}\\.\\d+$`));
      expect(vm.ssh.hostKeys[0]).toMatch(/^ssh-ed25519 /);
    }
  });

  it("ip --wait, labctl ssh and Ansible (the inventory with the user's own ssh args kept) go through it too", async () => {
    const ip = await labctl(['ip', '--wait', '--timeout', '60', '--json']);
    expect(ip.code, ip.stdout + ip.stderr).toBe(0);
    expect(JSON.parse(ip.stdout).vms.map((vm: { status: string }) => vm.status)).toEqual(['reachable', 'reachable']);
    const ssh = await labctl(['ssh', 'vm-02', '--', 'hostname']);
    expect(ssh.code, ssh.stderr).toBe(0);
    expect(ssh.stdout.trim()).toBe('vm-02');
    const inventory = await labctl(['inventory', '-o', join(labDir, 'hosts.ini')]);
    expect(inventory.code, inventory.stderr).toBe(0);
    const ansible = await run('ansible', ['all', '-i', join(labDir, 'hosts.ini'), '-m', 'raw', '-a', 'hostname'], {
      env: { ...process.env, ANSIBLE_NOCOLOR: '1', ANSIBLE_SSH_ARGS: '-o ControlMaster=no -o ControlPath=none' },
    });
    for (const name of ['vm-01', 'vm-02'])
      expect(ansible.stdout).toMatch(new RegExp(`^${name} \\| CHANGED \\| rc=0 >>\\n${name}\\b`, 'm'));
  });

  it('destroy --all through the same lab leaves nothing, the golden image untouched', async () => {
    const before = sha256(join(guest, 'golden.vhd'));
    const destroyed = await labctl(['destroy', '--all', '--json']);
    expect(destroyed.code, destroyed.stderr).toBe(0);
    expect(domainsAt(uri)).toEqual([]);
    expect(sha256(join(guest, 'golden.vhd'))).toBe(before);
  });
});
