import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { collectingSink } from '@labctl/core/events';
import { createLab } from '@labctl/core/flows/create';
import type { VmRecord } from '@labctl/core/state';
import { StateStore } from '@labctl/core/state';
import { okFacts } from '@labctl/core/testing/results';
import { LocalPowerShellRunner } from '@labctl/remote/local';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MigrationFinding } from './move.js';
import { HyperVProvider } from './provider.js';
import { LocalRecordedHost } from './testing/local-host.js';
import { defaultHost, type FakeHost } from './testing/recorded-hosts.js';
import { labPlan, numbered } from './testing/plans.js';
import { requirePwsh } from './testing/sim-state.js';

/**
 * `labctl migrate` on Hyper-V, on two simulated hosts under a real PowerShell engine: move_vms reads
 * both hosts first, and what stands between them and a live migration (migration off, CredSSP, no
 * migration network, a switch the destination lacks, what the directory says) fails the VMs with the
 * command that fixes it, before Move-VM runs; with all of it in place the VMs move, running, with
 * their disks, and a re-run finds them there.
 */
const gate = requirePwsh('Hyper-V migration on the simulator (pwsh)');

const kerberos = (extra: Partial<FakeHost> = {}): FakeHost => {
  const host = defaultHost();
  return {
    ...host,
    vmHost: {
      ...host.vmHost!,
      VirtualMachineMigrationEnabled: true,
      VirtualMachineMigrationAuthenticationType: 1,
      UseAnyNetworkForMigration: true,
    },
    ...extra,
  };
};

describe.skipIf(gate.skip)('Hyper-V migration: preflight and Move-VM between two simulated hosts', () => {
  let hv01: LocalRecordedHost;
  let hv02: LocalRecordedHost;
  let peers: string;
  let hv: HyperVProvider;
  let vms: VmRecord[];
  let directory: MigrationFinding[] = [];

  beforeAll(async () => {
    hv01 = new LocalRecordedHost();
    hv02 = new LocalRecordedHost();
    peers = join(mkdtempSync(join(tmpdir(), 'labctl-hv-peers-')), 'peers.json');
    writeFileSync(peers, JSON.stringify({ hv01: hv01.stateDir, hv02: hv02.stateDir }));
    hv01.reset(defaultHost(), { computerName: 'HV01' });
    hv02.reset(defaultHost(), { computerName: 'HV02' });
    hv = new HyperVProvider({
      lab: 'move',
      hosts: [{ name: 'hv01' }, { name: 'hv02' }],
      connect: async (host) =>
        new LocalPowerShellRunner({
          env: { ...(host.name === 'hv01' ? hv01 : hv02).env(), LABCTL_HYPERV_SIM_PEERS: peers },
        }),
      delegationFindings: async () => directory,
    });
    const labDir = mkdtempSync(join(tmpdir(), 'labctl-hv-move-'));
    const summary = await createLab({
      plan: labPlan('move', numbered('web', 2, { host: 'hv01' })),
      provider: hv,
      store: new StateStore(labDir),
      start: false,
      timeoutMs: 1_000,
    });
    expect(summary.counts).toMatchObject({ created: 2, failed: 0 });
    vms = JSON.parse(readFileSync(join(labDir, '.labctl', 'state.json'), 'utf8')).vms as VmRecord[];
    okFacts(await hv.start(vms, collectingSink()));
  });
  afterAll(async () => {
    await hv?.close();
    hv01?.stop();
    hv02?.stop();
  });

  const moves = (host: LocalRecordedHost) => host.invocations().filter((entry) => entry.script === 'move_vms').length;

  it('names every problem between the hosts with its fix, and moves nothing', async () => {
    // Both hosts as installed (migration off, CredSSP); the destination also lacks the VMs' switch.
    hv02.reset({ ...defaultHost(), switches: [] }, { computerName: 'HV02' });
    // `labctl hosts` says so before anyone tries.
    const report = await hv.hostReport();
    expect(report).toMatchObject({ name: 'hv01', reachable: true, migration: { ready: false } });
    expect(report.migration?.problems.map((problem) => problem.fix)).toEqual([
      'On hv01: Enable-VMMigration (or labctl delegation apply --configure-hosts)',
      'On hv01: Set-VMHost -VirtualMachineMigrationAuthenticationType Kerberos (and constrained delegation: labctl delegation apply)',
    ]);
    const before = moves(hv01);
    const results = await hv.migrate(vms, { to: 'hv02' }, collectingSink());
    expect(results.map((result) => [result.name, result.ok])).toEqual([
      ['web-01', false],
      ['web-02', false],
    ]);
    const error = results[0]!.ok ? undefined : results[0]!.error;
    expect(error?.code).toBe('MIGRATE_PREFLIGHT');
    expect(error?.message).toContain('hv01: live migration is off');
    expect(error?.message).toContain('hv02: live migration is off');
    expect(error?.message).toMatch(/hv01: migrations authenticate with CredSSP.*Credential Guard/);
    expect(error?.message).toContain("web-01: its switch 'LabSwitch' does not exist on hv02");
    expect(error?.hint).toContain('On hv01: Enable-VMMigration');
    expect(error?.hint).toContain('On hv02: Set-VMHost -VirtualMachineMigrationAuthenticationType Kerberos');
    expect(error?.hint).toContain("On hv02: New-VMSwitch -Name 'LabSwitch'");
    // One facts run on the source, none that moves: the VMs are where they were.
    expect(moves(hv01) - before).toBe(1);
    expect(hv01.host().vms.map((vm) => [vm.name, vm.state])).toEqual([
      ['web-01', 'Running'],
      ['web-02', 'Running'],
    ]);
    expect(hv02.host().vms).toEqual([]);

    // Kerberos on both, but the destination has no migration network and may not use any.
    hv01.reset({ ...kerberos(), vms: hv01.host().vms, files: hv01.host().files }, { computerName: 'HV01' });
    const noNetwork = kerberos();
    noNetwork.vmHost!.UseAnyNetworkForMigration = false;
    hv02.reset(noNetwork, { computerName: 'HV02' });
    const [network] = await hv.migrate(vms.slice(0, 1), { to: 'hv02' }, collectingSink());
    expect(network!.ok === false && network!.error.message).toMatch(/^hv01 -> hv02: hv02: no migration network/);
    expect(network!.ok === false && network!.error.hint).toContain('Set-VMHost -UseAnyNetworkForMigration $true');

    // Hosts ready, but the destination's volume cannot hold the disks that move with the VM.
    hv02.reset(kerberos(), { computerName: 'HV02', freeBytes: 1024 * 1024 });
    const [space] = await hv.migrate(vms.slice(0, 1), { to: 'hv02' }, collectingSink());
    expect(space!.ok === false && space!.error.message).toMatch(
      /hv02 has 1 MiB free where the disks go; they take \d+ MiB/,
    );
    expect(hv02.host().vms).toEqual([]);

    // Hosts ready, but the directory lacks a delegation entry (as the LDAP search reports it).
    hv02.reset(kerberos(), { computerName: 'HV02' });
    directory = [
      {
        subject: 'hv01',
        problem: 'HV01 may not delegate to cifs/hv02.lab.test',
        fix: 'labctl delegation apply --hosts hv01,hv02',
      },
    ];
    const [delegation] = await hv.migrate(vms.slice(0, 1), { to: 'hv02' }, collectingSink());
    expect(delegation!.ok === false && delegation!.error.message).toContain(
      'HV01 may not delegate to cifs/hv02.lab.test',
    );
    expect(delegation!.ok === false && delegation!.error.hint).toBe('labctl delegation apply --hosts hv01,hv02');
    directory = [];
  });

  it('moves running VMs with their disks when all is in place; a re-run finds them there', async () => {
    expect((await hv.hostReport()).migration).toEqual({ ready: true, problems: [] });
    const results = okFacts(await hv.migrate(vms, { to: 'hv02' }, collectingSink()));
    expect(results.map((facts) => [facts.host, facts.from, facts.moved, facts.mode, facts.state])).toEqual([
      ['hv02', 'hv01', true, 'live', 'running'],
      ['hv02', 'hv01', true, 'live', 'running'],
    ]);
    expect(results[0]!.resources?.vhdPath).toMatch(/^D:\\Hyper-V\\Virtual Hard Disks\\web-01\\web-01\.vhdx$/);
    expect(hv01.host().vms).toEqual([]);
    const arrived = hv02.host().vms;
    expect(arrived.map((vm) => [vm.name, vm.state])).toEqual([
      ['web-01', 'Running'],
      ['web-02', 'Running'],
    ]);
    expect(arrived[0]!.disks[0]).toBe(results[0]!.resources?.vhdPath);

    // The same records (still naming hv01, as after an interrupted run): found on hv02, not moved again.
    const again = okFacts(await hv.migrate(vms, { to: 'hv02' }, collectingSink()));
    expect(again.map((facts) => [facts.host, facts.moved])).toEqual([
      ['hv02', false],
      ['hv02', false],
    ]);
    // --offline refuses a running VM before anything moves.
    const moved = vms.map((vm) => ({ ...vm, host: 'hv02' }));
    const [offline] = await hv.migrate(moved.slice(0, 1), { to: 'hv01', mode: 'offline' }, collectingSink());
    expect(offline!.ok === false && offline!.error.code).toBe('MIGRATE_RUNNING');
    expect(hv02.host().vms).toHaveLength(2);
  });
});
