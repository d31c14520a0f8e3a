import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, domainsAt, removeAllDomains, type Run, repo, runInNetns, sha256, virshAt } from './run.js';

/**
 * One lab over two libvirt hosts, for real: two libvirtd test beds (scripts/testbed/kvm-up.sh), each
 * in its own network namespace with its own host UUID, their bridges joined into one L2 segment
 * (kvm-join.sh) so guests keep their static addresses wherever they run, and one disk directory both
 * hosts see at the same path (shared storage). labctl runs in the first host's namespace. Covered:
 * placement over both hosts, `labctl hosts`, a live migration under an open SSH session, an offline
 * one, evacuation, and a host whose libvirtd is down failing only its own VMs.
 */
const gate = requireTestbed('the KVM multi-host end-to-end tests', {
  root: true,
  commands: ['virsh', 'libvirtd', 'qemu-system-x86_64', 'qemu-img', 'ip', 'ssh'],
});
const NETNS_A = `labctl-kvm-h1-${process.pid}`;
const NETNS_B = `labctl-kvm-h2-${process.pid}`;
const PREFIX = '10.89.0';

let root: string;
let bedA: string;
let bedB: string;
let uriA: string;
let uriB: string;
let guest: string;
let shared: string;
let labDir: string;
let goldenSum: string;
let poolLab: string;

function bedUp(bed: string, netns: string, octet: number): string {
  const env = execFileSync(join(repo, 'scripts/testbed/kvm-up.sh'), [bed], {
    encoding: 'utf8',
    env: {
      ...process.env,
      KVM_NETNS: netns,
      KVM_SUBNET: `${PREFIX}.0/24`,
      KVM_DHCP_START: '100',
      KVM_BRIDGE: 'labhbr0',
      KVM_GATEWAY_OCTET: String(octet),
      KVM_MIGRATION_HOST: `${PREFIX}.${octet}`,
      ...(octet === 1 ? {} : { KVM_DHCP: 'no' }),
    },
  });
  return /^LIBVIRT_URI='([^']+)'/m.exec(env)![1]!;
}

function labctl(args: string[], timeoutMs = 400_000): Promise<Run> {
  const dashes = args.indexOf('--');
  const withLabDir =
    dashes < 0 ? [...args, '--lab-dir', labDir] : [...args.slice(0, dashes), '--lab-dir', labDir, ...args.slice(dashes)];
  // No LIBVIRT_DEFAULT_URI: the lab's hosts: say where libvirt runs.
  const { LIBVIRT_DEFAULT_URI: _unused, ...env } = process.env;
  return runInNetns(NETNS_A, [process.execPath, bin, ...withLabDir], env, timeoutMs);
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

async function hostOf(): Promise<Record<string, string>> {
  const state = JSON.parse(await readFile(join(labDir, '.labctl', 'state.json'), 'utf8'));
  return Object.fromEntries(state.vms.map((vm: { name: string; host: string }) => [vm.name, vm.host]));
}

describe.skipIf(gate.skip)(`KVM: one lab over two libvirt hosts (${gate.reason ?? 'root, libvirt, qemu'})`, () => {
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'labctl-kvm-hosts-'));
    bedA = join(root, 'a');
    bedB = join(root, 'b');
    guest = join(root, 'guest');
    shared = join(root, 'shared');
    await mkdir(shared, { recursive: true });
    execFileSync(join(repo, 'scripts/guest/build-guest.sh'), [guest], { stdio: 'ignore' });
    uriA = bedUp(bedA, NETNS_A, 1);
    uriB = bedUp(bedB, NETNS_B, 2);
    execFileSync(join(repo, 'scripts/testbed/kvm-join.sh'), [bedA, bedB], { stdio: 'ignore' });
    labDir = join(root, 'lab');
    await mkdir(labDir, { recursive: true });
    await writeFile(
      join(labDir, 'labctl.yaml'),
      [
        'lab: hosts',
        'provider: libvirt',
        'hosts:',
        `  - { name: h1, uri: "${uriA}", path: ${shared} }`,
        `  - { name: h2, uri: "${uriB}", path: ${shared} }`,
        'defaults:',
        '  memory: 128',
        `  golden: ${guest}/golden.qcow2`,
        `  kernel: ${guest}/vmlinux`,
        `  initrd: ${guest}/initrd-boot.gz`,
        '  cmdline: console=ttyS0 quiet panic=-1',
        `  network: { name: labnet, prefix: 24, gateway: ${PREFIX}.1 }`,
        `  ssh: { user: root, keyFile: ${guest}/id_ed25519 }`,
        'groups:',
        `  m: { count: 4, network: { addresses: ${PREFIX}.20-${PREFIX}.39 } }`,
      ].join('\n'),
    );
    goldenSum = sha256(join(guest, 'golden.qcow2'));

    // The second lab's hosts keep disks in a storage pool of their own: /var/lib/libvirt/images is
    // each daemon's private directory (its bed's lib/images), so nothing there is shared.
    for (const [bed, uri] of [
      [bedA, uriA],
      [bedB, uriB],
    ] as const) {
      await mkdir(join(bed, 'lib', 'labctl-golden'), { recursive: true });
      await mkdir(join(bed, 'lib', 'images'), { recursive: true });
      for (const file of ['golden.qcow2', 'vmlinux', 'initrd-boot.gz'])
        copyFileSync(join(guest, file), join(bed, 'lib', 'labctl-golden', file));
      virshAt(uri, 'pool-define-as', 'labctl-golden', 'dir', '--target', '/var/lib/libvirt/labctl-golden');
      virshAt(uri, 'pool-start', 'labctl-golden');
      virshAt(uri, 'pool-define-as', 'default', 'dir', '--target', '/var/lib/libvirt/images');
      virshAt(uri, 'pool-start', 'default');
    }
    poolLab = join(root, 'pools');
    await mkdir(poolLab, { recursive: true });
    await writeFile(
      join(poolLab, 'labctl.yaml'),
      [
        'lab: pools',
        'provider: libvirt',
        'hosts:',
        `  - { name: p1, uri: "${uriA}", pool: default }`,
        `  - { name: p2, uri: "${uriB}", pool: default }`,
        'defaults:',
        '  memory: 128',
        '  golden: /var/lib/libvirt/labctl-golden/golden.qcow2',
        '  kernel: /var/lib/libvirt/labctl-golden/vmlinux',
        '  initrd: /var/lib/libvirt/labctl-golden/initrd-boot.gz',
        '  cmdline: console=ttyS0 quiet panic=-1',
        `  network: { name: labnet, prefix: 24, gateway: ${PREFIX}.1 }`,
        `  ssh: { user: root, keyFile: ${guest}/id_ed25519 }`,
        'groups:',
        `  p: { count: 1, network: { addresses: ${PREFIX}.50-${PREFIX}.59 } }`,
      ].join('\n'),
    );
  }, 600_000);

  afterAll(async () => {
    if (!bedA) return;
    for (const uri of [uriA, uriB]) if (uri) removeAllDomains(uri);
    for (const bed of [bedA, bedB])
      execFileSync(join(repo, 'scripts/testbed/kvm-down.sh'), [bed], { stdio: 'ignore', timeout: 120_000 });
    await rm(root, { recursive: true, force: true });
  });

  it('create spreads the VMs over both hosts; `labctl hosts` shows both, with the lab’s VMs on each', async () => {
    const made = await json(['create', '--timeout', '300']);
    expect(made.code, JSON.stringify(made.data)).toBe(0);
    expect(made.data.counts).toMatchObject({ created: 4, reachable: 4 });
    const hosts = await hostOf();
    expect(Object.values(hosts).sort()).toEqual(['h1', 'h1', 'h2', 'h2']);
    expect(domainsAt(uriA).sort()).toEqual(Object.keys(hosts).filter((name) => hosts[name] === 'h1').sort());
    expect(domainsAt(uriB).sort()).toEqual(Object.keys(hosts).filter((name) => hosts[name] === 'h2').sort());

    const listed = await json(['hosts']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.data.hosts.map((host: any) => [host.name, host.reachable, host.labVms, host.vms])).toEqual([
      ['h1', true, 2, 2],
      ['h2', true, 2, 2],
    ]);
    expect(listed.data.hosts[0].versions.libvirt).toMatch(/^\d+\.\d+/);
    expect(listed.data.hosts[0].freeMemoryBytes).toBeGreaterThan(0);

    // The read commands go to each VM's own host: the live list, addresses, the inventory.
    const live = await json(['list']);
    expect(live.code, live.stderr).toBe(0);
    expect(live.data.vms.map((vm: any) => [vm.name, vm.host, vm.live])).toEqual(
      Object.keys(hosts)
        .sort()
        .map((name) => [name, hosts[name], 'running']),
    );
    const ip = await json(['ip', '--wait', '--timeout', '60']);
    expect(ip.code, ip.stderr).toBe(0);
    expect(ip.data.vms.map((vm: any) => vm.status)).toEqual(['reachable', 'reachable', 'reachable', 'reachable']);
    const inventory = await labctl(['inventory', '--format', 'yaml', '-o', '-']);
    expect(inventory.code, inventory.stderr).toBe(0);
    for (const [index, name] of ['m-01', 'm-02', 'm-03', 'm-04'].entries())
      expect(inventory.stdout).toContain(`        ${name}:\n          ansible_host: "${PREFIX}.${20 + index}"\n`);
  });

  it('migrate --live moves a running VM while an SSH command started before the move finishes after it; uptime goes on', async () => {
    const name = Object.entries(await hostOf()).find(([, host]) => host === 'h1')![0];
    // The session: uptime, ten seconds, a marker, uptime again, all in one SSH connection.
    const session = spawn(
      'ip',
      ['netns', 'exec', NETNS_A, process.execPath, bin, 'ssh', name, '--lab-dir', labDir, '--', 'cat /proc/uptime; sleep 10; echo after-move; cat /proc/uptime'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    session.stdout.on('data', (chunk) => {
      out += chunk;
    });
    const ended = new Promise<number>((resolve) => session.on('close', (code) => resolve(code ?? -1)));
    while (!out.includes('.')) await new Promise((resolve) => setTimeout(resolve, 100));

    const moved = await json(['migrate', name, '--to', 'h2', '--unsafe']);
    expect(moved.code, JSON.stringify(moved.data)).toBe(0);
    expect(moved.data.vms[0]).toMatchObject({ name, ok: true, facts: { host: 'h2', from: 'h1', moved: true, mode: 'live', state: 'running' } });
    expect(moved.data.ssh.vms[0]).toMatchObject({ name, status: 'reachable' });
    expect(domainsAt(uriA)).not.toContain(name);
    expect(domainsAt(uriB)).toContain(name);
    expect((await hostOf())[name]).toBe('h2');

    expect(await ended).toBe(0);
    const [before, marker, after] = out.trim().split('\n');
    expect(marker).toBe('after-move');
    // The same guest kept running: its uptime went on through the move (no reboot).
    expect(Number(after!.split(' ')[0]) - Number(before!.split(' ')[0])).toBeGreaterThanOrEqual(9.5);

    const again = await labctl(['ssh', name, '--', 'hostname']);
    expect(again).toMatchObject({ code: 0, stdout: `${name}\n` });
    // A re-run is a no-op.
    const rerun = await json(['migrate', name, '--to', 'h2', '--unsafe']);
    expect(rerun.data.vms[0]).toMatchObject({ ok: true, facts: { moved: false, host: 'h2' } });
    // A host that is not in the lab: exit 2, nothing asked of any host.
    const unknown = await labctl(['migrate', name, '--to', 'h9']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--to "h9" is not a host of this lab.*\n.*Hosts: h1, h2/);
    // Without --unsafe libvirt refuses storage it cannot see is shared, and labctl says what to do.
    const back = Object.entries(await hostOf()).find(([, host]) => host === 'h2')![0];
    const refused = await json(['migrate', back, '--to', 'h1']);
    expect(refused.code).toBe(1);
    expect(refused.data.vms[0].error).toMatchObject({ code: 'MIGRATE_FAILED' });
    expect(refused.data.vms[0].error.hint).toMatch(/shared storage/);
    expect(domainsAt(uriB)).toContain(back);
  });

  it('an offline migration moves a stopped VM’s definition; it starts on the new host', async () => {
    const name = Object.entries(await hostOf()).find(([, host]) => host === 'h2')![0];
    expect((await labctl(['stop', name])).code).toBe(0);
    const live = await labctl(['migrate', name, '--to', 'h1', '--live']);
    expect(live.code).toBe(1);
    expect(live.stdout + live.stderr).toMatch(/live migration moves a running VM/);
    const moved = await json(['migrate', name, '--to', 'h1']);
    expect(moved.code, JSON.stringify(moved.data)).toBe(0);
    expect(moved.data.vms[0]).toMatchObject({ ok: true, facts: { host: 'h1', mode: 'offline', state: 'stopped' } });
    expect(domainsAt(uriA)).toContain(name);
    expect(domainsAt(uriB)).not.toContain(name);
    const started = await labctl(['start', name]);
    expect(started.code, started.stderr).toBe(0);
    expect(await labctl(['ssh', name, '--', 'hostname'])).toMatchObject({ code: 0, stdout: `${name}\n` });
  });

  it('evacuate empties a host: every VM of the lab moves live to the other one, with the time each took', async () => {
    const dry = await json(['evacuate', 'h1', '--dry-run', '--unsafe']);
    expect(dry.code).toBe(0);
    const onH1 = Object.entries(await hostOf()).filter(([, host]) => host === 'h1').map(([name]) => name);
    expect(onH1.length).toBeGreaterThan(0);
    expect(Object.keys(dry.data.targets).sort()).toEqual(onH1.sort());
    expect(domainsAt(uriA).sort()).toEqual(onH1.sort());

    const run = await json(['evacuate', 'h1', '--unsafe']);
    expect(run.code, JSON.stringify(run.data)).toBe(0);
    expect(run.data.vms.map((vm: any) => [vm.name, vm.ok, vm.facts.host])).toEqual(onH1.map((name) => [name, true, 'h2']));
    for (const vm of run.data.vms) expect(vm.facts.durationMs).toBeGreaterThan(0);
    expect(domainsAt(uriA)).toEqual([]);
    expect(Object.values(await hostOf())).toEqual(['h2', 'h2', 'h2', 'h2']);
    for (const name of onH1) expect(await labctl(['ssh', name, '--', 'hostname'])).toMatchObject({ code: 0, stdout: `${name}\n` });
  });

  it('--copy-storage moves a running VM to a host that does not share its disks: QEMU copies the disk, the seed follows, the old volumes go', async () => {
    const images = (bed: string) => readdir(join(bed, 'lib', 'images')).then((files) => files.sort());
    labDir = poolLab;
    try {
      const made = await json(['create', '--host', 'p1', '--timeout', '300']);
      expect(made.code, JSON.stringify(made.data)).toBe(0);
      expect(await images(bedA)).toEqual(['p-01.console.log', 'p-01.qcow2', 'p-01.seed.iso']);
      expect((await labctl(['ssh', 'p-01', '--', 'echo kept > /root/marker && sync'])).code).toBe(0);
      // Without --copy-storage libvirt sees storage that is not shared, and nothing moves.
      const refused = await json(['migrate', 'p-01', '--to', 'p2']);
      expect(refused.code).toBe(1);
      expect(refused.data.vms[0].error.hint).toMatch(/shared storage/);
      const moved = await json(['migrate', 'p-01', '--to', 'p2', '--copy-storage']);
      expect(moved.code, JSON.stringify(moved.data)).toBe(0);
      expect(moved.data.vms[0]).toMatchObject({ ok: true, facts: { host: 'p2', mode: 'live', state: 'running' } });
      expect(await labctl(['ssh', 'p-01', '--', 'cat /root/marker'])).toMatchObject({ code: 0, stdout: 'kept\n' });
      expect(await images(bedA)).toEqual([]);
      expect(await images(bedB)).toEqual(['p-01.console.log', 'p-01.qcow2', 'p-01.seed.iso']);
      expect((await labctl(['destroy', '--all'])).code).toBe(0);
      expect(await images(bedB)).toEqual([]);
    } finally {
      labDir = join(root, 'lab');
    }
    expect(sha256(join(bedA, 'lib', 'labctl-golden', 'golden.qcow2'))).toBe(goldenSum);
    expect(sha256(join(bedB, 'lib', 'labctl-golden', 'golden.qcow2'))).toBe(goldenSum);
  });

  it('a host whose libvirtd is down fails only its own VMs, with the cause; the other host’s are made; a re-run converges', async () => {
    // Two VMs back to h1, so each host has some.
    const [first, second] = Object.keys(await hostOf());
    expect((await json(['migrate', first!, second!, '--to', 'h1', '--unsafe'])).code).toBe(0);
    const onH2 = Object.entries(await hostOf()).filter(([, host]) => host === 'h2').map(([name]) => name);
    const pid = (await readFile(join(bedB, 'libvirtd.pid'), 'utf8')).trim();
    process.kill(Number(pid), 'SIGTERM');
    for (let i = 0; i < 50 && (await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')); i++)
      await new Promise((resolve) => setTimeout(resolve, 100));

    const grown = await json(['create', '--count', '6', '--timeout', '300']);
    expect(grown.code).toBe(1);
    const byName = new Map(grown.data.vms.map((vm: any) => [vm.name, vm]));
    for (const name of onH2) {
      expect(byName.get(name)).toMatchObject({ action: 'failed', state: 'running', failure: { code: 'HOST_UNREACHABLE' } });
      expect((byName.get(name) as any).error).toMatch(/host h2 cannot be reached/);
    }
    // The new VMs went to the host that answers.
    const hosts = await hostOf();
    expect(hosts['m-05']).toBe('h1');
    expect(hosts['m-06']).toBe('h1');
    expect(byName.get('m-05')).toMatchObject({ action: 'created', state: 'running' });
    expect(grown.data.checks.some((check: any) => check.id === 'hosts.unreachable' && /h2/.test(check.message))).toBe(true);
    const down = await json(['hosts']);
    expect(down.code).toBe(1);
    expect(down.data.hosts[1]).toMatchObject({ name: 'h2', reachable: false });

    bedUp(bedB, NETNS_B, 2);
    const again = await json(['create', '--count', '6', '--timeout', '300']);
    expect(again.code, JSON.stringify(again.data)).toBe(0);
    expect(again.data.counts).toMatchObject({ planned: 6, created: 0, failed: 0, reachable: 6 });
    for (const name of onH2) expect((await hostOf())[name]).toBe('h2');

    // --host pins the new VMs only: the lab's VMs on h1 are seen there, not made again on h2.
    const before = await hostOf();
    const pinned = await json(['create', '--count', '7', '--host', 'h2', '--timeout', '300']);
    expect(pinned.code, JSON.stringify(pinned.data)).toBe(0);
    expect(pinned.data.counts).toMatchObject({ created: 1, kept: 6 });
    expect(await hostOf()).toEqual({ ...before, 'm-07': 'h2' });
    expect(domainsAt(uriA).length + domainsAt(uriB).length).toBe(7);
  });

  it('destroy --all removes every VM on both hosts and their disks; the golden image is byte-identical', async () => {
    const gone = await labctl(['destroy', '--all']);
    expect(gone.code, gone.stderr).toBe(0);
    expect(domainsAt(uriA)).toEqual([]);
    expect(domainsAt(uriB)).toEqual([]);
    expect((await readdir(shared)).filter((file) => /\.(qcow2|iso)$/.test(file))).toEqual([]);
    expect(sha256(join(guest, 'golden.qcow2'))).toBe(goldenSum);
  });
});
