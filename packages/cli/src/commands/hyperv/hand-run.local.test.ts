import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { LocalRecordedHost } from '@labctl/hyperv/testing/local-host';
import { GOLDEN } from '@labctl/hyperv/testing/recorded-hosts';
import { requirePwsh } from '@labctl/hyperv/testing/sim-state';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

/**
 * The PowerShell that labctl prints for admins to run themselves, run under a real pwsh the way
 * they would: `labctl delegation script` against the ActiveDirectory simulator module, and the
 * bundle of `labctl create --dry-run --emit-powershell` against the Hyper-V simulator.
 */
const bin = resolve(import.meta.dirname, '../../../bin/run.js');
const gate = requirePwsh('hand-run PowerShell from labctl (pwsh with the simulators)');

async function labctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)('node', [bin, ...args], {
      env: { ...process.env, LABCTL_LDAP_PASSWORD: '' },
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe.skipIf(gate.skip)('PowerShell labctl hands to admins, run by a real pwsh', () => {
  let host: LocalRecordedHost;
  let dir: string;
  beforeAll(async () => {
    host = new LocalRecordedHost();
    dir = await mkdtemp(join(tmpdir(), 'labctl-hand-run-'));
  });
  afterAll(async () => {
    host?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  beforeEach(() => host.reset());

  const computer = (name: string, extra: Record<string, unknown> = {}) => ({
    DistinguishedName: `CN=${name},CN=Computers,DC=lab,DC=example`,
    DNSHostName: `${name.toLowerCase()}.lab.example`,
    'msDS-AllowedToDelegateTo': ['cifs/fileserver.lab.example'],
    TrustedForDelegation: false,
    TrustedToAuthForDelegation: false,
    ...extra,
  });
  const directory = async () => JSON.parse(await readFile(join(host.stateDir, 'ad.json'), 'utf8'));

  it('delegation script: apply sets the mesh and is idempotent; remove --reset-flags undoes exactly what LDAP remove --reset-flags does', async () => {
    await writeFile(
      join(host.stateDir, 'ad.json'),
      JSON.stringify({ computers: { HV01: computer('HV01', { TrustedForDelegation: true }), HV02: computer('HV02') } }),
    );
    const apply = await labctl(['delegation', 'script', '--hosts', 'hv01,hv02', '--domain', 'lab.example']);
    expect(apply.code).toBe(0);
    await writeFile(join(dir, 'kcd.ps1'), apply.stdout);
    const first = host.pwsh(`& '${join(dir, 'kcd.ps1')}'`);
    expect(first).toContain('HV01: added 4 value(s)');
    const applied = await directory();
    expect(applied.computers.HV01).toMatchObject({ TrustedForDelegation: false, TrustedToAuthForDelegation: true });
    expect([...applied.computers.HV01['msDS-AllowedToDelegateTo']].sort()).toEqual(
      [
        'cifs/fileserver.lab.example',
        'Microsoft Virtual System Migration Service/hv02.lab.example',
        'Microsoft Virtual System Migration Service/HV02',
        'cifs/hv02.lab.example',
        'cifs/HV02',
      ].sort(),
    );
    expect(host.pwsh(`& '${join(dir, 'kcd.ps1')}'`).trim()).toBe('');

    const remove = await labctl([
      'delegation',
      'script',
      '--hosts',
      'hv01,hv02',
      '--domain',
      'lab.example',
      '--remove',
      '--reset-flags',
    ]);
    await writeFile(join(dir, 'kcd-remove.ps1'), remove.stdout);
    host.pwsh(`& '${join(dir, 'kcd-remove.ps1')}'`);
    const removed = await directory();
    for (const name of ['HV01', 'HV02']) {
      // The unrelated value stays; protocol transition is off; unconstrained delegation stays off.
      expect(removed.computers[name]).toMatchObject({
        'msDS-AllowedToDelegateTo': ['cifs/fileserver.lab.example'],
        TrustedForDelegation: false,
        TrustedToAuthForDelegation: false,
      });
    }
    const withoutFlag = await labctl([
      'delegation',
      'script',
      '--hosts',
      'hv01,hv02',
      '--domain',
      'lab.example',
      '--reset-flags',
    ]);
    expect(withoutFlag.code).toBe(2);
  });

  it('create --dry-run --emit-powershell: run-<host>.ps1 run by hand creates, starts and reports the VMs', async () => {
    const lab = await mkdtemp(join(tmpdir(), 'labctl-hand-run-lab-'));
    try {
      await writeFile(
        join(lab, 'labctl.yaml'),
        [
          'lab: handrun',
          'provider: hyperv',
          'defaults:',
          `  golden: '${GOLDEN}'`,
          '  network: LabSwitch',
          '  memory: 1G',
          'groups:',
          '  web: {}',
          'hosts:',
          '  - { name: hv01 }',
          '',
        ].join('\n'),
      );
      const emitted = await labctl([
        'create',
        '--count',
        '3',
        '--dry-run',
        '--emit-powershell',
        join(lab, 'bundle'),
        '--lab-dir',
        lab,
      ]);
      expect(emitted.code, emitted.stderr).toBe(0);
      const output = host.pwsh(`& '${join(lab, 'bundle', 'run-hv01.ps1')}'`);
      // get_host_facts, create_vms, start_vms, get_adapters: each prints one envelope.
      expect(output.match(/<<<LABCTL-JSON/g)).toHaveLength(4);
      expect(host.host().vms.map((vm) => [vm.name, vm.state])).toEqual([
        ['web-01', 'Running'],
        ['web-02', 'Running'],
        ['web-03', 'Running'],
      ]);
    } finally {
      await rm(lab, { recursive: true, force: true });
    }
  });
});
