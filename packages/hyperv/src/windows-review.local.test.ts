import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { collectingSink } from '@labctl/core/events';
import type { VmRecord } from '@labctl/core/state';
import { okFacts, outcomes } from '@labctl/core/testing/results';
import { LocalPowerShellRunner } from '@labctl/remote/local';
import { bootstrapCommandLine, bootstrapStdin, extractEnvelope } from '@labctl/remote/powershell';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { explainNoAddress } from './discovery.js';
import { HyperVProvider } from './provider.js';
import { SCRIPTS } from './scripts/index.js';
import { LocalRecordedHost } from './testing/local-host.js';
import { labPlan, numbered, vmPlan } from './testing/plans.js';
import { defaultHost, GiB, GOLDEN } from './testing/recorded-hosts.js';
import { localPath, requirePwsh, simulatedFiles } from './testing/sim-state.js';

/**
 * What a review against Microsoft's documentation found in the Hyper-V scripts, each shown on the
 * simulated host (a real pwsh with the Hyper-V simulator module, run the way labctl's local
 * transport runs powershell.exe).
 */
const gate = requirePwsh('Hyper-V script fixes on the simulator (pwsh)');

describe.skipIf(gate.skip)('Hyper-V scripts on the simulator: what the Windows review found', () => {
  let host: LocalRecordedHost;
  const open: HyperVProvider[] = [];
  beforeAll(() => {
    host = new LocalRecordedHost();
  });
  afterAll(async () => {
    await Promise.all(open.map((provider) => provider.close()));
    host?.stop();
  });
  beforeEach(() => host.reset());

  function provider(lab: string, extra: { path?: string } = {}): HyperVProvider {
    const made = new HyperVProvider({
      lab,
      hosts: [{ name: 'hv01', ...extra }],
      connect: async () => new LocalPowerShellRunner({ env: host.env() }),
    });
    open.push(made);
    return made;
  }

  it('prints JSON in ASCII only (\\uXXXX), so switch names and paths survive any console code page', async () => {
    const setup = defaultHost();
    setup.switches.push({ name: 'Schüler-Netz Ω', type: 'Internal' });
    host.reset(setup);
    const result = await new LocalPowerShellRunner({ env: host.env() }).exec(bootstrapCommandLine(), {
      stdin: bootstrapStdin(
        SCRIPTS.get_host_facts.text,
        JSON.stringify({ lab: 'x', goldens: [], switches: ['Schüler-Netz Ω'], names: [], diskDirs: [] }),
      ),
    });
    expect(result.code).toBe(0);
    expect([...result.stdout].filter((char) => char.charCodeAt(0) > 0x7f)).toEqual([]);
    expect(result.stdout).toContain('Sch\\u00fcler-Netz \\u03a9');
    expect((extractEnvelope(result.stdout)?.data as { switches?: unknown[] } | undefined)?.switches).toEqual([
      { name: 'Schüler-Netz Ω', exists: true, switchType: 'Internal' },
    ]);
  });

  it('one unreadable golden disk is a check on that disk, not a failed fact gathering', async () => {
    const broken = 'D:\\Golden\\broken.vhdx';
    writeFileSync(localPath(host.stateDir, broken), 'not a virtual disk\n');
    const { checks } = await provider('gold-check').preflight(
      labPlan('gold-check', [vmPlan('a-01', { host: 'hv01' }), vmPlan('b-01', { host: 'hv01', golden: broken })]),
    );
    const errors = checks.filter((check) => check.level === 'error');
    expect(
      errors.map((check) => [check.id, check.subject]),
      JSON.stringify(errors),
    ).toEqual([['hyperv.golden.unreadable', broken]]);
    expect(errors[0]?.message).toContain('The file or directory is corrupted and unreadable');
  });

  it('a golden disk on a share this session cannot read is "not readable from this session", not "does not exist"', async () => {
    const share = '\\\\fs01\\golden\\centos7.vhdx';
    const { checks } = await provider('smb').preflight(
      labPlan('smb', [vmPlan('a-01', { host: 'hv01', golden: share })]),
    );
    const check = checks.find((item) => item.id === 'hyperv.golden.unreadable');
    expect(check?.message).toBe(
      `golden disk ${share} is not readable from this session on hv01 (share not readable from this session)`,
    );
    expect(check?.hint).toMatch(/no network credentials/);
    expect(checks.find((item) => item.id === 'hyperv.golden.missing')).toBeUndefined();
  });

  it('free space comes from the volume mounted at the longest prefix (a Cluster Shared Volume under C:), and is "unknown" on a share', async () => {
    host.reset(defaultHost(), {
      volumes: [
        { name: 'C:\\', freeBytes: 5 * GiB },
        { name: 'C:\\ClusterStorage\\Volume1\\', freeBytes: 900 * GiB },
      ],
    });
    const csv = await provider('csv', { path: 'C:\\ClusterStorage\\Volume1\\VMs' }).preflight(
      labPlan('csv', numbered('web', 2, { host: 'hv01' })),
    );
    expect(csv.checks.find((check) => check.id === 'hyperv.disk.space')).toMatchObject({
      level: 'ok',
      subject: 'hv01:C:\\ClusterStorage\\Volume1\\',
    });
    const unc = await provider('unc', { path: '\\\\fs01\\vms' }).preflight(
      labPlan('unc', numbered('web', 2, { host: 'hv01' })),
    );
    expect(unc.checks.find((check) => check.id === 'hyperv.disk.space')).toMatchObject({
      level: 'warning',
      message: expect.stringContaining('unknown: a network share'),
    });
  });

  it('a full copy that fails mid-way (volume full) leaves no disk under the real name, and a re-run makes it', async () => {
    const setup = defaultHost();
    setup.files[GOLDEN] = { type: 'Dynamic', size: 40 * GiB, fileSize: 3 * GiB, paddingBytes: 4 * 1024 * 1024 };
    host.reset(setup, { fileSizeLimitBytes: 1024 * 1024 });
    const hv = provider('full');
    const vms = [vmPlan('db-01', { host: 'hv01', clone: 'full' })];
    const first = await hv.create(vms, collectingSink());
    expect(outcomes(first)).toEqual(['HYPERV_CREATE_FAILED']);
    expect(first[0]?.ok === false && first[0].error.message).toMatch(/too large|space/i);
    expect(simulatedFiles(host.stateDir).filter((file) => file.includes('\\full\\'))).toEqual([]);
    host.scenario({});
    const second = okFacts(await hv.create(vms, collectingSink()));
    expect(second.map((record) => record.state)).toEqual(['created']);
    expect(host.host().files['D:\\Hyper-V\\Virtual Hard Disks\\full\\db-01.vhdx']).toMatchObject({ type: 'Dynamic' });
  });

  it('a VM that fails after New-VM is rolled back whole: no VM, no disk, no VM folder; the batch goes on', async () => {
    host.reset(defaultHost(), { fail: { 'Set-VM': 'AccessDenied' } });
    const hv = provider('rollback');
    const results = await hv.create(numbered('web', 2, { host: 'hv01' }), collectingSink());
    expect(outcomes(results)).toEqual(['HYPERV_CREATE_FAILED', 'HYPERV_CREATE_FAILED']);
    expect(results[0]?.ok === false && results[0].error.message).toContain('You do not have the required permission');
    expect(host.host().vms).toEqual([]);
    expect(simulatedFiles(host.stateDir)).toEqual([GOLDEN]);
    expect(existsSync(localPath(host.stateDir, 'D:\\Hyper-V\\Virtual Hard Disks\\rollback\\web-01'))).toBe(false);
  });

  it('destroy of a VM with checkpoints removes the .avhdx chain down to its disk and the VM folder; golden untouched', async () => {
    const hv = provider('snap');
    const records = okFacts(await hv.create(numbered('web', 2, { host: 'hv01' }), collectingSink()));
    host.pwsh('Checkpoint-VM -Name web-01 -SnapshotName before; Checkpoint-VM -Name web-01 -SnapshotName after');
    const before = host.host();
    expect(before.vms.find((vm) => vm.name === 'web-01')?.disks[0]).toMatch(/\.avhdx$/);
    expect(simulatedFiles(host.stateDir).filter((file) => file.endsWith('.avhdx'))).toHaveLength(2);
    await hv.destroy(records as VmRecord[], {}, collectingSink());
    expect(host.host().vms).toEqual([]);
    expect(simulatedFiles(host.stateDir)).toEqual([GOLDEN]);
    expect(existsSync(localPath(host.stateDir, 'D:\\Hyper-V\\Virtual Hard Disks\\snap\\web-01'))).toBe(false);
    expect(host.host().files[GOLDEN]).toEqual(defaultHost().files[GOLDEN]);
  });

  it('register --dry-run changes nothing on the host, not even the planned VM; it says what it would fix', async () => {
    const config = 'E:\\Moved\\Virtual Machines\\5D2B7A9C-1111-4C3B-8D7E-0A1B2C3D4E5F.vmcx';
    const setup = defaultHost();
    setup.unregistered[config] = { name: 'app01', switch: 'OldSwitch', disks: [GOLDEN] };
    host.reset(setup);
    const file = localPath(host.stateDir, config);
    const bytes = readFileSync(file);
    const driver = await provider('reg').driver('hv01');
    const [result] = await driver.registerVms({ paths: [config], switch: 'LabSwitch', dryRun: true });
    expect(result).toMatchObject({ ok: true, registered: false, fixes: [{ fix: 'connected to switch LabSwitch' }] });
    expect(readFileSync(file)).toEqual(bytes);
    expect(host.host().vms).toEqual([]);
  });

  it('preflight refuses startup memory that is not a multiple of 2 MB and more CPUs than the host has, before New-VM would', async () => {
    const { checks } = await provider('sizes').preflight(
      labPlan('sizes', [vmPlan('a-01', { host: 'hv01', memoryMiB: 1025 }), vmPlan('b-01', { host: 'hv01', cpus: 32 })]),
    );
    const errors = checks.filter((check) => check.level === 'error');
    expect(errors.map((check) => [check.id, check.subject])).toEqual([
      ['hyperv.cpus.host', 'b-01'],
      ['hyperv.memory.alignment', 'a-01'],
    ]);
    expect(errors[0]?.message).toContain('16 logical processors');
  });

  it('a static MAC already used by a VM on the host (or twice in the lab) is refused, with a locally administered prefix offered', async () => {
    const setup = defaultHost();
    setup.vms.push({
      name: 'hand-made',
      id: '0f9d1c62-3f4e-4a0a-9b7e-2d8e6c1a5b3f',
      state: 'Off',
      generation: 2,
      memoryBytes: GiB,
      notes: '',
      disks: [],
      adapters: [{ name: 'Network Adapter', mac: '00155D123410', switch: 'LabSwitch', dynamicMac: false }],
    });
    host.reset(setup);
    const { checks } = await provider('macs').preflight(
      labPlan('macs', [
        vmPlan('a-01', { host: 'hv01', mac: '00:15:5d:12:34:10' }),
        vmPlan('b-01', { host: 'hv01', mac: '00:15:5d:12:34:20' }),
        vmPlan('b-02', { host: 'hv01', mac: '00:15:5d:12:34:20' }),
      ]),
    );
    const duplicates = checks.filter((check) => check.id === 'hyperv.mac.duplicate');
    expect(duplicates.map((check) => check.subject)).toEqual(['a-01', 'b-01, b-02']);
    expect(duplicates[0]?.message).toContain('already used by VM "hand-made"');
    expect(duplicates[0]?.hint).toContain('02:15:5D');
  });

  it('the KVP hint finds the integration service by its id, so it works on a host in another language', async () => {
    host.reset(defaultHost(), { locale: 'de', kvp: { 'web-01': 'disabled' } });
    const hv = provider('kvp');
    const records = okFacts(await hv.create(numbered('web', 1, { host: 'hv01' }), collectingSink()));
    okFacts(await hv.start(records, collectingSink()));
    const [report] = await hv.adapters(records);
    expect(report?.addresses).toEqual([]);
    const reason = report?.problem ?? '';
    const command = reason.slice(reason.indexOf('turn it on: ') + 'turn it on: '.length);
    expect(command).toMatch(/^Get-VMIntegrationService /);
    host.pwsh(command);
    expect(
      host
        .pwsh(
          "(Get-VMIntegrationService -VMName web-01 | Where-Object { $_.Id -like '*2A34B1C2-FD73-4043-8A5B-DD2159BC743F' }).Enabled",
        )
        .trim(),
    ).toBe('True');
    expect(
      explainNoAddress(
        { name: "it's", state: 'Running', kvpEnabled: false, adapters: [] } as never,
        { name: 'n', macAddress: '', ipAddresses: [], switchName: 's', status: [] } as never,
        'hv01',
      ),
    ).toContain("-VMName 'it''s'");
  });

  it('scripts load the Hyper-V module with -SkipEditionCheck under PowerShell 7 (no implicit remoting on Server 2016)', () => {
    for (const script of Object.values(SCRIPTS))
      expect(script.text).toContain('Import-Module -Name Hyper-V -SkipEditionCheck');
    expect(host.pwsh('Import-Module -Name Hyper-V -SkipEditionCheck; (Get-Module Hyper-V).ModuleType').trim()).toBe(
      'Script',
    );
  });
});

describe.skipIf(gate.skip)('the simulator: Move-VM between two simulated hosts', () => {
  let source: LocalRecordedHost;
  let destination: LocalRecordedHost;
  let peers: string;
  beforeAll(() => {
    source = new LocalRecordedHost();
    destination = new LocalRecordedHost();
    peers = `${source.stateDir}/../peers.json`;
    writeFileSync(peers, JSON.stringify({ hv02: destination.stateDir }));
  });
  afterAll(() => {
    source?.stop();
    destination?.stop();
  });

  const kerberos = () => {
    const host = defaultHost();
    host.vmHost = {
      ...host.vmHost!,
      VirtualMachineMigrationEnabled: true,
      VirtualMachineMigrationAuthenticationType: 1,
    };
    return host;
  };
  const move = (extra = '') =>
    source.pwsh(
      `New-VHD -Path 'D:\\VMs\\app.vhdx' -ParentPath '${GOLDEN}' -Differencing | Out-Null; New-VM -Name app -Generation 2 -VHDPath 'D:\\VMs\\app.vhdx' -SwitchName LabSwitch | Start-VM; try { Move-VM -Name app -DestinationHost hv02.lab.test ${extra}; 'moved' } catch { $_.Exception.Message }`,
      { LABCTL_HYPERV_SIM_PEERS: peers },
    );

  it('refuses what stops a live migration on a host, and moves the running VM (with its storage) when all is there', () => {
    source.reset(defaultHost());
    destination.reset(kerberos());
    expect(move(), 'migration off').toMatch(/not configured for migration/);
    source.reset({ ...defaultHost(), vmHost: { ...kerberos().vmHost!, VirtualMachineMigrationAuthenticationType: 0 } });
    expect(move()).toMatch(/No credentials are available in the security package/);
    source.reset(kerberos());
    destination.reset({ ...kerberos(), switches: [] });
    expect(move()).toMatch(/Could not find Ethernet switch 'LabSwitch'/);
    source.reset(kerberos());
    destination.reset(kerberos());
    expect(move()).toMatch(/not accessible from the destination/);
    source.reset(kerberos());
    expect(move("-IncludeStorage -DestinationStoragePath 'E:\\Moved'").trim()).toBe('moved');
    expect(source.host().vms).toEqual([]);
    expect(destination.host().vms.map((vm) => [vm.name, vm.state, vm.disks])).toEqual([
      ['app', 'Running', ['E:\\Moved\\app.vhdx']],
    ]);
    expect(simulatedFiles(destination.stateDir)).toContain('E:\\Moved\\app.vhdx');
    expect(simulatedFiles(source.stateDir)).not.toContain('D:\\VMs\\app.vhdx');
  });
});
