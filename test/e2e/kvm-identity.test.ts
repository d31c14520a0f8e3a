import { execFile, execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, domainsAt, removeAllDomains, type Run, repo, runInNetns, virshAt } from './run.js';

/**
 * Every clone its own identity before it boots, end to end on real libvirt + qemu in a network
 * namespace: labctl makes each VM's host key and NoCloud seed, the demo guest applies it (as the
 * firstboot-seed step does on CentOS), and nothing is learned on first contact. 6 VMs with static
 * addresses (in the seed) and 6 with DHCP reservations (net-update), all on one network whose DHCP
 * range starts above both. (12 VMs, not the 20 of the issue: TCG boots on 2 cores dominate the suite.)
 */
const gate = requireTestbed('the KVM identity end-to-end tests', {
  root: true,
  commands: ['virsh', 'libvirtd', 'qemu-system-x86_64', 'qemu-img', 'ansible', 'ip', 'ssh'],
});
// One namespace per run: two runs on one machine (or one killed mid-way) never share a bridge.
const NETNS = `labctl-kvm-id-${process.pid}`;
const PREFIX = '10.83.0';

let root: string;
let bed: string;
let guest: string;
let uri: string;
let labDir: string;

interface StateVm {
  name: string;
  state: string;
  addresses: string[];
  assignedAddress?: string;
  assign?: string;
  instanceId?: string;
  ssh: { hostKeys: string[] };
  error?: string;
}

function labctl(args: string[], dir = labDir, timeoutMs = 400_000): Promise<Run> {
  return runInNetns(
    NETNS,
    [process.execPath, bin, ...args, '--lab-dir', dir],
    { ...process.env, LIBVIRT_DEFAULT_URI: uri },
    timeoutMs,
  );
}

async function state(dir = labDir): Promise<{ vms: StateVm[] }> {
  return JSON.parse(await readFile(join(dir, '.labctl', 'state.json'), 'utf8'));
}

async function writeLab(dir: string, groups: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(
    join(dir, 'labctl.yaml'),
    [
      `lab: ${dir.split('/').pop()}`,
      'concurrency: 10',
      'defaults:',
      '  memory: 128',
      `  golden: ${guest}/golden.vhd`,
      `  kernel: ${guest}/vmlinux`,
      `  initrd: ${guest}/initrd-boot.gz`,
      '  cmdline: console=ttyS0 quiet panic=-1',
      `  network: { name: labnet, prefix: 24, gateway: ${PREFIX}.1 }`,
      `  ssh: { user: root, keyFile: ${guest}/id_ed25519 }`,
      'groups:',
      groups,
    ].join('\n'),
  );
}

/** OpenSSH with strict checking against nothing but the known_hosts labctl wrote, keys under the VM's name. */
function ssh(
  knownHosts: string,
  alias: string,
  address: string,
  command: string,
): Promise<{ code: number; out: string }> {
  return new Promise((done) => {
    execFile(
      'ip',
      [
        'netns',
        'exec',
        NETNS,
        'ssh',
        '-i',
        join(guest, 'id_ed25519'),
        '-o',
        'BatchMode=yes',
        '-o',
        'StrictHostKeyChecking=yes',
        '-o',
        `UserKnownHostsFile=${knownHosts}`,
        '-o',
        'GlobalKnownHostsFile=/dev/null',
        '-o',
        `HostKeyAlias=${alias}`,
        '-o',
        'ConnectTimeout=10',
        `root@${address}`,
        command,
      ],
      { encoding: 'utf8', timeout: 30_000 },
      (error, stdout, stderr) =>
        done({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, out: `${stdout}${stderr}` }),
    );
  });
}

describe.skipIf(gate.skip)(
  `KVM: identity and addresses before first boot (${gate.reason ?? 'root, libvirt, qemu'})`,
  () => {
    beforeAll(async () => {
      root = await mkdtemp(join(tmpdir(), 'labctl-kvm-id-'));
      bed = join(root, 'bed');
      guest = join(root, 'guest');
      execFileSync(join(repo, 'scripts/guest/build-guest.sh'), [guest], { stdio: 'ignore' });
      const env = execFileSync(join(repo, 'scripts/testbed/kvm-up.sh'), [bed], {
        encoding: 'utf8',
        env: {
          ...process.env,
          KVM_NETNS: NETNS,
          KVM_SUBNET: `${PREFIX}.0/24`,
          KVM_DHCP_START: '100',
          KVM_BRIDGE: 'labidbr0',
        },
      });
      uri = /^LIBVIRT_URI='([^']+)'/m.exec(env)![1]!;
      labDir = join(root, 'lab');
      await writeLab(
        labDir,
        [
          `  st: { count: 6, network: { addresses: ${PREFIX}.20-${PREFIX}.25 } }`,
          `  rs: { count: 6, network: { addresses: ${PREFIX}.40-45, assign: reservation } }`,
        ].join('\n'),
      );
    });

    afterAll(async () => {
      if (!bed) return;
      removeAllDomains(uri);
      execFileSync(join(repo, 'scripts/testbed/kvm-down.sh'), [bed], { stdio: 'ignore', timeout: 120_000 });
      await rm(root, { recursive: true, force: true });
    });

    it('known_hosts holds every VM key before any VM starts; then all 12 answer with their own name, strictly checked', async () => {
      const made = await labctl(['create', '--no-start', '--json']);
      expect(made.code, made.stderr).toBe(0);
      expect(domainsAt(uri)).toHaveLength(12);
      for (const name of domainsAt(uri)) expect(virshAt(uri, 'domstate', name).trim()).toBe('shut off');
      const planned = await state();
      for (const vm of planned.vms) {
        expect(vm.ssh.hostKeys, vm.name).toHaveLength(1);
        expect(vm.ssh.hostKeys[0]).toMatch(/^ssh-ed25519 AAAA/);
        expect(vm.instanceId).toMatch(new RegExp(`^${vm.name}-[0-9a-f]{12}$`));
      }
      expect(planned.vms.find((vm) => vm.name === 'st-03')).toMatchObject({
        assignedAddress: `${PREFIX}.22`,
        assign: 'static',
      });
      expect(planned.vms.find((vm) => vm.name === 'rs-06')).toMatchObject({
        assignedAddress: `${PREFIX}.45`,
        assign: 'reservation',
      });
      // The private keys live only in the seeds: nowhere in the state.
      expect(JSON.stringify(planned)).not.toContain('PRIVATE KEY');

      // Before any boot: an inventory (with known_hosts) of 12 hosts at their given addresses.
      const inventory = await labctl(['inventory', '-o', join(labDir, 'hosts.ini'), '--json']);
      expect(inventory.code, inventory.stderr).toBe(0);
      const knownHosts = join(labDir, 'known_hosts');
      const pinned = await readFile(knownHosts, 'utf8');
      for (const vm of planned.vms) expect(pinned).toContain(`${vm.name} ${vm.ssh.hostKeys[0]}`);
      // The reservations are in the network before boot.
      const net = virshAt(uri, 'net-dumpxml', 'labnet');
      expect(net).toMatch(new RegExp(`<host mac='52:54:00:[0-9a-f:]+' name='rs-01' ip='${PREFIX}.40'/>`));

      const up = await labctl(['create', '--timeout', '300', '--json']);
      console.log(`12 VMs from stopped to all-SSH with pinned keys: ${up.ms} ms`);
      expect(up.code, up.stderr).toBe(0);
      const summary = JSON.parse(up.stdout);
      expect(summary.counts).toMatchObject({ planned: 12, kept: 12, reachable: 12 });
      const after = await state();
      // Nothing learned on first contact: the keys are the ones made before boot.
      for (const vm of after.vms)
        expect(vm.ssh.hostKeys, vm.name).toEqual(planned.vms.find((v) => v.name === vm.name)!.ssh.hostKeys);
      expect(await readFile(knownHosts, 'utf8')).toBe(pinned);

      const answers = await Promise.all(
        after.vms.map((vm) => ssh(knownHosts, vm.name, vm.assignedAddress!, 'hostname; cat /etc/labctl-instance-id')),
      );
      after.vms.forEach((vm, i) => {
        expect(answers[i], vm.name).toEqual({ code: 0, out: `${vm.name}\n${vm.instanceId}\n` });
        expect(vm.addresses[0]).toBe(vm.assignedAddress);
      });

      const ansible = execFileSync(
        'ip',
        [
          'netns',
          'exec',
          NETNS,
          'ansible',
          'all',
          '-i',
          join(labDir, 'hosts.ini'),
          '-m',
          'raw',
          '-a',
          'hostname',
          '-f',
          '10',
        ],
        {
          encoding: 'utf8',
          env: { ...process.env, ANSIBLE_HOST_KEY_CHECKING: 'True', ANSIBLE_NOCOLOR: '1' },
        },
      );
      for (const vm of after.vms)
        expect(ansible).toMatch(new RegExp(`^${vm.name} \\| CHANGED \\| rc=0 >>\\n${vm.name}\\b`, 'm'));
    });

    it('a key other than the one labctl made is refused: by discovery and by OpenSSH', async () => {
      // The VM's seed key against a pin of another key: as if the image had ignored its seed.
      const file = join(labDir, '.labctl', 'state.json');
      const saved = JSON.parse(await readFile(file, 'utf8'));
      const victim = saved.vms.find((vm: StateVm) => vm.name === 'st-01');
      const real = victim.ssh.hostKeys[0];
      victim.ssh.hostKeys = [
        execFileSync(
          'bash',
          ['-c', `d=$(mktemp -d); ssh-keygen -q -t ed25519 -N '' -f $d/k; cut -d' ' -f1,2 $d/k.pub; rm -rf $d`],
          { encoding: 'utf8' },
        ).trim(),
      ];
      await writeFile(file, JSON.stringify(saved));
      const ip = await labctl(['ip', 'st-01', '--wait', '--timeout', '30', '--json']);
      expect(ip.code).not.toBe(0);
      const result = JSON.parse(ip.stdout).vms[0];
      expect(result.status).toBe('failed');
      expect(result.detail).toMatch(/not the one recorded/);
      expect(result.hint).toMatch(/other than the one labctl made/);
      await labctl(['inventory', '-o', join(labDir, 'hosts.ini')]);
      const refused = await ssh(join(labDir, 'known_hosts'), 'st-01', `${PREFIX}.20`, 'true');
      expect(refused.code).not.toBe(0);
      expect(refused.out).toMatch(/REMOTE HOST IDENTIFICATION HAS CHANGED/);
      victim.ssh.hostKeys = [real];
      await writeFile(file, JSON.stringify(saved));
    });

    it('a reboot with the same instance-id changes nothing; a second lab on the same addresses is refused before anything is made', async () => {
      const before = await ssh(
        join(labDir, 'known_hosts'),
        'st-02',
        `${PREFIX}.21`,
        'cat /etc/dropbear/dropbear_ed25519_host_key | md5sum',
      );
      virshAt(uri, 'destroy', 'st-02');
      virshAt(uri, 'start', 'st-02');
      const ip = await labctl(['ip', 'st-02', '--wait', '--timeout', '120', '--json']);
      expect(ip.code, ip.stderr).toBe(0);
      const again = await ssh(
        join(labDir, 'known_hosts'),
        'st-02',
        `${PREFIX}.21`,
        'cat /etc/dropbear/dropbear_ed25519_host_key | md5sum',
      );
      expect(again).toEqual(before);

      const other = join(root, 'other');
      await writeLab(other, `  web: { count: 3, network: { addresses: ${PREFIX}.24-${PREFIX}.28 } }`);
      const domainsBefore = domainsAt(uri);
      const refused = await labctl(['create', '--json'], other);
      expect(refused.code).toBe(2);
      expect(JSON.parse(refused.stdout).error.message).toMatch(
        new RegExp(`${PREFIX.replaceAll('.', '\\.')}\\.24 already answers on the network`),
      );
      expect(domainsAt(uri)).toEqual(domainsBefore);

      const reserved = join(root, 'reserved');
      await writeLab(
        reserved,
        `  db: { count: 2, network: { addresses: ${PREFIX}.44-${PREFIX}.45, assign: reservation } }`,
      );
      const refusedToo = await labctl(['create', '--no-start', '--json'], reserved);
      expect(refusedToo.code).toBe(2);
      expect(JSON.parse(refusedToo.stdout).error.message).toMatch(/already reserves 10\.83\.0\.44/);
      expect(domainsAt(uri)).toEqual(domainsBefore);
    });

    it('destroy removes the seeds and exactly the reservations it made', async () => {
      const done = await labctl(['destroy', '--all', '--json']);
      expect(done.code, done.stderr).toBe(0);
      expect(domainsAt(uri)).toEqual([]);
      const disks = execFileSync('ls', [join(labDir, '.labctl', 'disks')], { encoding: 'utf8' });
      expect(disks).not.toMatch(/seed\.iso/);
      expect(virshAt(uri, 'net-dumpxml', 'labnet')).not.toMatch(/<host /);
    });
  },
);
