import { readFileSync } from 'node:fs';
import { UsageError } from '@labctl/core/errors';
import type { LabSpec } from '@labctl/core/spec';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { requirePwsh } from './testing/sim-state.js';
import { powershellSyntaxProblems } from '@labctl/core/testing/powershell-syntax';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configureMigration, type MigrationTarget, migrationAuthName, migrationTargets } from './migration.js';
import { SCRIPTS } from './scripts/index.js';
import { defaultHost, RecordedHosts } from './testing/recorded-hosts.js';

const recording = (name: string) =>
  JSON.parse(readFileSync(new URL(`./testing/recordings/${name}`, import.meta.url), 'utf8'));
const spec = (hosts: LabSpec['hosts']): LabSpec => ({ lab: 'mig', hosts }) as LabSpec;

describe('delegation hosts to hosts: entries', () => {
  const lab = spec([
    { name: 'hv01', address: 'admin@10.0.0.1' },
    { name: 'HV02.lab.test', address: 'hv02.lab.test', user: 'admin', port: 2222 },
    { name: 'hv03' },
  ]);

  it('matches by exact name or by the AD short name, case-insensitively; the SSH target as the provider builds it', () => {
    const hosts = [
      { given: 'HV01', short: 'HV01' },
      { given: 'hv02', short: 'HV02' },
      { given: 'hv03.lab.test', short: 'HV03' },
    ];
    expect(migrationTargets(lab, hosts)).toEqual([
      { host: 'HV01', labHost: 'hv01', target: 'admin@10.0.0.1' },
      { host: 'HV02', labHost: 'HV02.lab.test', target: 'admin@hv02.lab.test:2222' },
      { host: 'HV03', labHost: 'hv03', target: 'hv03' },
    ]);
  });

  it('a host missing from hosts: is a usage error (exit 2) naming it; so is one that two entries answer to', () => {
    const missing = () =>
      migrationTargets(lab, [
        { given: 'hv01', short: 'HV01' },
        { given: 'hv09', short: 'HV09' },
      ]);
    expect(missing).toThrow(UsageError);
    expect(missing).toThrow(/not in hosts: of labctl\.yaml: hv09/);
    try {
      missing();
    } catch (error) {
      expect((error as UsageError).exitCode).toBe(2);
      expect((error as UsageError).code).toBe('MIGRATION_HOST_UNKNOWN');
    }
    const twice = spec([{ name: 'hv01.a.test' }, { name: 'hv01.b.test' }]);
    expect(() => migrationTargets(twice, [{ given: 'hv01', short: 'HV01' }])).toThrow(/more than one entry/);
    expect(() => migrationTargets(spec(undefined), [{ given: 'hv01', short: 'HV01' }])).toThrow(/hv01/);
  });

  it('the authentication type reads the same from 5.1 (a number) and 7 (a name)', () => {
    expect(migrationAuthName(recording('get-vmhost-migration.51.json').VirtualMachineMigrationAuthenticationType)).toBe(
      'CredSSP',
    );
    expect(migrationAuthName(recording('get-vmhost-migration.7.json').VirtualMachineMigrationAuthenticationType)).toBe(
      'Kerberos',
    );
    expect(migrationAuthName(1)).toBe('Kerberos');
  });

  it('configure_migration parses and names no user value: its only input is { apply }', async () => {
    expect(await powershellSyntaxProblems(SCRIPTS.configure_migration.text)).toEqual([]);
    expect(SCRIPTS.configure_migration.text).toContain('Hyper-V\\Enable-VMMigration');
    expect(SCRIPTS.configure_migration.text).toContain(
      'Hyper-V\\Set-VMHost -VirtualMachineMigrationAuthenticationType Kerberos',
    );
  });
});

/**
 * Against simulated Hyper-V hosts behind real sshd (scripts/testbed/hyperv-hosts.sh): what goes over
 * the wire is what a Windows OpenSSH server would get; the stand-in keeps Get-VMHost's migration
 * fields in the host state and changes them as Enable-VMMigration and Set-VMHost would.
 */
const gate = requirePwsh('Hyper-V live-migration settings (sshd with pwsh and the Hyper-V simulator)', {
  root: true,
  commands: ['sshd', 'ssh-keygen', 'unshare'],
});

describe.skipIf(gate.skip)('configure_migration on simulated hosts', () => {
  let hosts: RecordedHosts;
  let targets: MigrationTarget[];
  // Nothing listens there: connection refused, like a host that is down.
  const unreachable: MigrationTarget = { host: 'HV09', labHost: 'hv09', target: 'labctl-np@127.0.0.1:22449' };
  const port = (target: MigrationTarget) => Number(target.target.split(':').pop());
  const connect = (target: MigrationTarget) => hosts.connect(port(target));

  beforeAll(() => {
    hosts = new RecordedHosts(2, 22440);
    targets = hosts.ports.map((p, index) => ({
      host: `HV0${index + 1}`,
      labHost: `hv0${index + 1}`,
      target: `labctl-np@127.0.0.1:${p}`,
    }));
  });
  afterAll(() => hosts?.stop());
  const resetAll = () => {
    for (const target of targets) hosts.reset(port(target), defaultHost(), { computerName: target.host });
  };

  it('read-only: reports what would change and changes nothing; apply changes both settings; a re-run changes nothing', async () => {
    resetAll();
    const planned = await configureMigration(targets, { mode: 'read', connect });
    expect(planned.map((outcome) => [outcome.host, outcome.status, outcome.steps.map((step) => step.status)])).toEqual([
      ['HV01', 'needs-change', ['needed', 'needed']],
      ['HV02', 'needs-change', ['needed', 'needed']],
    ]);
    expect(planned[0]?.settings).toMatchObject({ migrationEnabled: false, authenticationType: 'CredSSP' });
    for (const target of targets)
      expect(hosts.host(port(target)).vmHost?.VirtualMachineMigrationEnabled ?? false).toBe(false);

    const applied = await configureMigration(targets, { mode: 'apply', connect });
    expect(applied.map((outcome) => [outcome.host, outcome.status])).toEqual([
      ['HV01', 'changed'],
      ['HV02', 'changed'],
    ]);
    expect(applied[0]?.steps).toEqual([
      { setting: 'migrationEnabled', command: 'Enable-VMMigration', from: false, to: true, status: 'changed' },
      {
        setting: 'authenticationType',
        command: 'Set-VMHost -VirtualMachineMigrationAuthenticationType Kerberos',
        from: 'CredSSP',
        to: 'Kerberos',
        status: 'changed',
      },
    ]);
    expect(applied[0]?.settings).toMatchObject({
      computerName: 'HV01',
      migrationEnabled: true,
      authenticationType: 'Kerberos',
    });
    for (const target of targets) {
      expect(hosts.host(port(target)).vmHost).toMatchObject({
        VirtualMachineMigrationEnabled: true,
        VirtualMachineMigrationAuthenticationType: 1,
      });
    }
    // No migration network and UseAnyNetworkForMigration off: said, not silently left.
    expect(applied[0]?.warnings.join('\n')).toMatch(/no migration network/);

    const again = await configureMigration(targets, { mode: 'apply', connect });
    expect(again.map((outcome) => [outcome.host, outcome.status, outcome.steps.map((step) => step.status)])).toEqual([
      ['HV01', 'unchanged', ['unchanged', 'unchanged']],
      ['HV02', 'unchanged', ['unchanged', 'unchanged']],
    ]);
    // One script run per host per command: read, apply, re-run.
    for (const target of targets)
      expect(hosts.invocations(port(target)).map((entry) => entry.script)).toEqual([
        'configure_migration',
        'configure_migration',
        'configure_migration',
      ]);
  });

  it('a host that is down and a host whose Set-VMHost is denied are reported; the others are done; a re-run finishes', async () => {
    resetAll();
    const [first, second] = targets as [MigrationTarget, MigrationTarget];
    hosts.scenario(port(second), { computerName: 'HV02', failSetVMHost: true });
    const outcomes = await configureMigration([first, unreachable, second], { mode: 'apply', connect });
    expect(outcomes.map((outcome) => [outcome.host, outcome.status])).toEqual([
      ['HV01', 'changed'],
      ['HV09', 'failed'],
      ['HV02', 'failed'],
    ]);
    expect(outcomes[1]?.error).toMatch(/127\.0\.0\.1:22449/);
    expect(outcomes[2]?.steps.map((step) => [step.setting, step.status])).toEqual([
      ['migrationEnabled', 'changed'],
      ['authenticationType', 'failed'],
    ]);
    expect(outcomes[2]).toMatchObject({
      code: 'MIGRATION_STEP_FAILED',
      error: expect.stringMatching(/^Set-VMHost .*required permission/),
    });
    expect(outcomes[2]?.steps[1]?.code).toBe('AccessDenied,Microsoft.HyperV.PowerShell.Commands.SetVMHost');
    expect(hosts.host(port(first)).vmHost).toMatchObject({
      VirtualMachineMigrationEnabled: true,
      VirtualMachineMigrationAuthenticationType: 1,
    });
    expect(hosts.host(port(second)).vmHost).toMatchObject({
      VirtualMachineMigrationEnabled: true,
      VirtualMachineMigrationAuthenticationType: 0,
    });

    hosts.scenario(port(second), { computerName: 'HV02' });
    const rerun = await configureMigration([first, second], { mode: 'apply', connect });
    expect(rerun.map((outcome) => [outcome.host, outcome.status, outcome.steps.map((step) => step.status)])).toEqual([
      ['HV01', 'unchanged', ['unchanged', 'unchanged']],
      ['HV02', 'changed', ['unchanged', 'changed']],
    ]);
  });

  it('a hosts: entry that reaches another computer than its AD name is a warning; migration networks silence the network warning', async () => {
    const [first] = targets as [MigrationTarget];
    const host = defaultHost();
    host.vmHost = {
      VirtualMachineMigrationEnabled: true,
      VirtualMachineMigrationAuthenticationType: 1,
      UseAnyNetworkForMigration: false,
      MaximumVirtualMachineMigrations: 2,
      MigrationNetworks: [{ Subnet: '10.10.0.0/24', Priority: 0 }],
    };
    hosts.reset(port(first), host, { computerName: 'HV07' });
    const [outcome] = await configureMigration([first], { mode: 'read', connect });
    expect(outcome).toMatchObject({ status: 'unchanged', settings: { migrationNetworks: ['10.10.0.0/24'] } });
    expect(outcome?.warnings).toEqual([expect.stringMatching(/answers as computer HV07, not HV01/)]);
  });
});
