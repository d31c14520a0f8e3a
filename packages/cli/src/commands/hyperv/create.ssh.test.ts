import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { requirePwsh } from '@labctl/hyperv/testing/sim-state';
import { defaultHost, GOLDEN, RecordedHosts } from '@labctl/hyperv/testing/recorded-hosts';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import Create, { type CreateResult } from '../create.js';
import Destroy from '../destroy.js';
import Ip from '../ip.js';
import HyperVRegister, { type HyperVRegisterResult } from './register.js';

/**
 * `labctl create --provider hyperv` and `labctl destroy --all` as commands (in process), through the
 * provider registry and the provider-neutral flows, against a simulated Hyper-V host over real SSH.
 * --no-wait: the recorded guests' addresses are not reachable (nothing leaves 127.0.0.1).
 */
const gate = requirePwsh('labctl create --provider hyperv (sshd with pwsh and the Hyper-V simulator)', {
  root: true,
  commands: ['sshd', 'ssh-keygen', 'unshare'],
});
const cliRoot = resolve(import.meta.dirname, '../../..');

describe.skipIf(gate.skip)('labctl create/destroy with provider hyperv', () => {
  let hosts: RecordedHosts;
  let port: number;
  let lab: string;
  const labDirs: string[] = [];
  const newLab = (): string => {
    const dir = mkdtempSync(join(tmpdir(), 'labctl-hyperv-lab-'));
    labDirs.push(dir);
    writeFileSync(
      join(dir, 'labctl.yaml'),
      [
        'lab: hvlab',
        'provider: hyperv',
        'defaults:',
        `  golden: '${GOLDEN}'`,
        '  network: LabSwitch',
        '  memory: 1G',
        'groups:',
        '  web: {}',
        'hosts:',
        `  - { name: hv01, address: 'labctl-np@127.0.0.1:${port}' }`,
        'hyperv:',
        `  knownHosts: ${join(hosts.dir, 'known_hosts')}`,
        `  identityFile: ${join(hosts.dir, 'client', 'id_ed25519')}`,
        '',
      ].join('\n'),
    );
    return dir;
  };
  beforeAll(() => {
    hosts = new RecordedHosts(1, 22420);
    port = hosts.ports[0] ?? 0;
    lab = newLab();
  });
  afterAll(() => {
    hosts?.stop();
    for (const dir of labDirs) rmSync(dir, { recursive: true, force: true });
  });

  it('creates and starts 10 VMs in 4 PowerShell runs, records them, logs every run; destroy removes them and keeps the golden disk', async () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const created = (await Create.run(
      ['--count', '10', '--no-wait', '--concurrency', '10', '--json', '--lab-dir', lab],
      cliRoot,
    )) as CreateResult;
    expect(created.dryRun).toBe(false);
    if (created.dryRun) return;
    expect(created.counts).toMatchObject({ planned: 10, created: 10, failed: 0 });
    expect(hosts.invocations(port).map((entry) => entry.script)).toEqual([
      'list_vms',
      'get_host_facts',
      'create_vms',
      'start_vms',
    ]);
    const state = JSON.parse(await readFile(join(lab, '.labctl', 'state.json'), 'utf8'));
    expect(
      state.vms.map((vm: { name: string; host: string; state: string }) => [vm.name, vm.host, vm.state]),
    ).toContainEqual(['web-10', 'hv01', 'running']);
    const log = (await readFile(join(lab, '.labctl', 'powershell.log'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));
    expect(
      log.map((entry: { script: string; host: string; exit: number }) => [entry.script, entry.host, entry.exit]),
    ).toContainEqual(['create_vms', 'hv01', 0]);
    expect(log[0].scriptText).toBeUndefined();

    await Destroy.run(['--all', '--json', '--lab-dir', lab], cliRoot);
    const host = hosts.host(port);
    expect(host.vms).toEqual([]);
    // Destroy in the provider's batches: the ten VMs go in one remove_vms run, not one run per VM.
    expect(
      hosts
        .invocations(port)
        .filter((entry) => entry.script === 'remove_vms')
        .map((entry) => entry.vms),
    ).toEqual([10]);
    expect(Object.keys(host.files)).toEqual([GOLDEN]);
    vi.restoreAllMocks();
  });

  it('a VM that fails at New-VM keeps that cause in the summary, the state and --json, is never started, and the command exits 1 (with --no-start too); a re-run makes it', async () => {
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const dir = newLab();
    hosts.reset(port, defaultHost(), { failCreate: ['web-02'] });
    for (const extra of [['--no-start'], ['--no-wait']]) {
      process.exitCode = undefined;
      const created = (await Create.run(
        ['--count', '3', ...extra, '--json', '--lab-dir', dir],
        cliRoot,
      )) as CreateResult;
      if (created.dryRun) throw new Error('not a dry run');
      expect([extra, process.exitCode]).toEqual([extra, 1]);
      const failed = created.vms.find((vm) => vm.name === 'web-02');
      expect(failed).toMatchObject({
        action: 'failed',
        state: 'failed',
        failure: { code: 'HYPERV_CREATE_FAILED', message: expect.stringContaining('The operation failed') },
      });
      expect(failed?.error).toBe(failed?.failure?.message);
      expect(created.counts.failed).toBe(1);
      const state = JSON.parse(await readFile(join(dir, '.labctl', 'state.json'), 'utf8'));
      expect(state.vms.find((vm: { name: string }) => vm.name === 'web-02')).toMatchObject({
        state: 'failed',
        errorCode: 'HYPERV_CREATE_FAILED',
      });
    }
    // start_vms ran once (not with --no-start) and for the two made VMs only: web-02's error is New-VM's, not "does not exist".
    expect(
      hosts
        .invocations(port)
        .filter((entry) => entry.script === 'start_vms')
        .map((entry) => entry.vms),
    ).toEqual([2]);
    hosts.scenario(port, {});
    process.exitCode = undefined;
    const again = (await Create.run(
      ['--count', '3', '--no-wait', '--json', '--lab-dir', dir],
      cliRoot,
    )) as CreateResult;
    if (again.dryRun) throw new Error('not a dry run');
    expect(again.counts).toMatchObject({ created: 1, failed: 0 });
    expect(process.exitCode).toBeUndefined();
    await Destroy.run(['--all', '--json', '--lab-dir', dir], cliRoot);
    vi.restoreAllMocks();
  });

  it('--dry-run asks the host read-only: the placed plan (host per VM, one create run), and a missing switch refuses it (exit 2) as the real run would', async () => {
    const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const dir = newLab();
    hosts.reset(port, defaultHost(), {});
    const dry = (await Create.run(['--count', '3', '--dry-run', '--json', '--lab-dir', dir], cliRoot)) as CreateResult;
    if (!dry.dryRun) throw new Error('a dry run');
    expect(dry.plan.vms.map((vm) => [vm.name, vm.host])).toEqual([
      ['web-01', 'hv01'],
      ['web-02', 'hv01'],
      ['web-03', 'hv01'],
    ]);
    expect(dry.batches).toEqual([['web-01', 'web-02', 'web-03']]);
    expect(dry.actions).toEqual({ 'web-01': 'create', 'web-02': 'create', 'web-03': 'create' });
    const logged = vi.spyOn(console, 'log').mockImplementation(() => {});
    const refused = await Create.run(
      ['--count', '3', '--dry-run', '--network', 'NoSuchSwitch', '--json', '--lab-dir', dir],
      cliRoot,
    ).catch((error: unknown) => error);
    expect((refused as { oclif?: { exit?: number } }).oclif?.exit).toBe(2);
    const printed = [...out.mock.calls, ...logged.mock.calls].map((call) => String(call[0])).join('');
    expect(printed).toMatch(/PREFLIGHT_FAILED/);
    expect(printed).toMatch(/NoSuchSwitch/);
    // Read-only: the host saw only fact gathering and listing; nothing exists, no state was written.
    expect([...new Set(hosts.invocations(port).map((entry) => entry.script))].sort()).toEqual([
      'get_host_facts',
      'list_vms',
    ]);
    expect(hosts.host(port).vms).toEqual([]);
    await expect(readFile(join(dir, '.labctl', 'state.json'))).rejects.toThrow();
    vi.restoreAllMocks();
  });

  it('create + start + IPs of 10 VMs is the same 5 PowerShell runs at --concurrency 1 and 10; MACs are 00:15:5D', async () => {
    const runs: Record<string, string[]> = {};
    let previousMacs: Array<string | undefined> = [];
    for (const concurrency of ['1', '10']) {
      hosts.reset(port);
      const dir = newLab();
      vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
      const created = (await Create.run(
        ['--count', '10', '--no-wait', '--concurrency', concurrency, '--json', '--lab-dir', dir],
        cliRoot,
      )) as CreateResult;
      const ips = (await Ip.run(['--json', '--lab-dir', dir], cliRoot)) as {
        vms: Array<{ name: string; address: string | null }>;
      };
      vi.restoreAllMocks();
      if (created.dryRun) throw new Error('not a dry run');
      expect(created.counts).toMatchObject({ planned: 10, created: 10, failed: 0 });
      expect(ips.vms.filter((vm) => vm.address?.startsWith('192.168.50.'))).toHaveLength(10);
      runs[concurrency] = hosts.invocations(port).map((entry) => entry.script);
      expect(hosts.invocations(port).find((entry) => entry.script === 'start_vms')?.vms).toBe(10);
      // Static MACs in Hyper-V's range 00:15:5D, as planned (deterministic per lab + VM name).
      const macs = hosts.host(port).vms.map((vm) => vm.adapters[0]?.mac);
      expect(macs).toEqual(macs.map(() => expect.stringMatching(/^00155D[0-9A-F]{6}$/)));
      expect(new Set(macs).size).toBe(10);
      if (concurrency === '10') expect(macs).toEqual(previousMacs);
      previousMacs = macs;
    }
    expect(runs['1']).toEqual(['list_vms', 'get_host_facts', 'create_vms', 'start_vms', 'get_adapters']);
    expect(runs['10']).toEqual(runs['1']);
  });

  it('labctl hyperv register fixes the switch and disk path, registers in place, and exits 1 for what it cannot fix', async () => {
    const config = 'E:\\Moved\\Virtual Machines\\5D2B7A9C-1111-4C3B-8D7E-0A1B2C3D4E5F.vmcx';
    const broken = 'E:\\Moved\\Virtual Machines\\6E3C8B0D-2222-4C3B-8D7E-0A1B2C3D4E5F.vmcx';
    const host = defaultHost();
    host.files['F:\\NewDisks\\app.vhdx'] = { type: 'Dynamic', size: 20 * 1024 ** 3, fileSize: 1024 ** 3 };
    host.unregistered[config] = { name: 'app01', switch: 'OldSwitch', disks: ['C:\\Old\\app.vhdx'] };
    host.unregistered[broken] = { name: 'app02', switch: 'LabSwitch', disks: ['C:\\Old\\lost.vhdx'] };
    hosts.reset(port, host);
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const result = (await HyperVRegister.run(
      [
        config,
        broken,
        '--host',
        'hv01',
        '--vhd-dir',
        'F:\\NewDisks',
        '--switch',
        'LabSwitch',
        '--json',
        '--lab-dir',
        lab,
      ],
      cliRoot,
    )) as HyperVRegisterResult;
    vi.restoreAllMocks();
    expect(
      result.vms.map((vm) => [vm.name, vm.registered, (vm.fixes ?? []).length, (vm.remaining ?? []).length]),
    ).toEqual([
      ['app01', true, 2, 0],
      ['app02', false, 0, 1],
    ]);
    expect(process.exitCode).toBe(1);
    process.exitCode = 0;
    expect(hosts.host(port).files).toEqual(host.files);
    expect(hosts.invocations(port).map((entry) => entry.script)).toEqual(['register_vms']);
  });
});
