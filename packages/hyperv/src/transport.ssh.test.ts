import { requireTestbed } from '@labctl/core/testing/testbed';
import { requirePwsh } from './testing/sim-state.js';
import {
  PowerShellHostError,
  PowerShellScriptError,
  PowerShellSession,
  type ScriptRunLog,
} from '@labctl/remote/powershell';
import { SshHostKeyError, SshTimeoutError } from '@labctl/remote/ssh';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PowerShellHyperVDriver } from './driver.js';
import { SCRIPTS } from './scripts/index.js';
import { RecordedHosts } from './testing/recorded-hosts.js';

/**
 * The PowerShell transport over real ssh2 to a real sshd on 127.0.0.1, whose forced command stands
 * in for powershell.exe (scripts/testbed/hyperv-hosts.sh): what goes over the wire is exactly what a
 * Windows OpenSSH server would get.
 */
const gate = requirePwsh('Hyper-V transport tests (sshd with pwsh and the Hyper-V simulator)', {
  root: true,
  commands: ['sshd', 'ssh-keygen', 'unshare'],
});

describe.skipIf(gate.skip)('PowerShell over SSH to a simulated Hyper-V host', () => {
  let hosts: RecordedHosts;
  let port: number;
  beforeAll(() => {
    hosts = new RecordedHosts(1, 22400);
    port = hosts.ports[0] ?? 0;
  });
  afterAll(() => hosts?.stop());

  it('runs a script: one invocation, a command line far below 8191 characters, a logged run', async () => {
    hosts.reset(port);
    const ssh = await hosts.connect(port);
    const logs: ScriptRunLog[] = [];
    try {
      const session = new PowerShellSession(ssh, { host: 'hv01', log: (entry) => logs.push(entry), debug: true });
      expect(await session.run(SCRIPTS.list_vms, { lab: "it's a `lab` $(x)" })).toEqual({ vms: [] });
    } finally {
      await ssh.close();
    }
    const seen = hosts.invocations(port);
    expect(seen.map((entry) => [entry.script, entry.shell])).toEqual([['list_vms', 'powershell.exe']]);
    expect(seen[0]?.commandLength).toBeLessThan(8191);
    expect(logs[0]).toMatchObject({
      script: 'list_vms',
      host: 'hv01',
      exit: 0,
      ok: true,
      scriptText: SCRIPTS.list_vms.text,
    });
    expect(logs[0]?.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('a batch with one failing VM: the others are created, the failed one leaves no disk behind', async () => {
    hosts.reset(port, undefined, { failCreate: ['web-02'] });
    const ssh = await hosts.connect(port);
    try {
      const driver = new PowerShellHyperVDriver(new PowerShellSession(ssh, { host: 'hv01' }));
      const results = await driver.createVms({
        lab: 'lab1',
        diskDir: null,
        vms: ['web-01', 'web-02', 'web-03'].map((name) => ({
          name,
          group: 'web',
          generation: 2 as const,
          memoryBytes: 2 * 1024 ** 3,
          processors: 2,
          switch: 'LabSwitch',
          mac: null,
          vlan: null,
          secureBoot: 'linux' as const,
          golden: 'D:\\Golden\\centos7.vhdx',
          clone: 'linked' as const,
          diskFile: `${name}.vhdx`,
          seedFile: `${name}.seed.vhdx`,
          seed: null,
        })),
      });
      expect(results.map((result) => [result.name, result.ok, result.created])).toEqual([
        ['web-01', true, true],
        ['web-02', false, false],
        ['web-03', true, true],
      ]);
      expect(results[1]?.error).toMatchObject({ type: 'Microsoft.HyperV.PowerShell.VirtualizationException' });
      expect(driver.invocations).toBe(1);
    } finally {
      await ssh.close();
    }
    const host = hosts.host(port);
    expect(host.vms.map((vm) => vm.name)).toEqual(['web-01', 'web-03']);
    expect(Object.keys(host.files).sort()).toEqual([
      'D:\\Golden\\centos7.vhdx',
      'D:\\Hyper-V\\Virtual Hard Disks\\lab1\\web-01.vhdx',
      'D:\\Hyper-V\\Virtual Hard Disks\\lab1\\web-03.vhdx',
    ]);
  });

  it('an uncaught error comes back as the CLIXML error message, not as raw XML, with or without DefaultShell', async () => {
    const broken = {
      name: 'broken',
      text: "# labctl-script: broken\nparam([string]$InputJson)\n$ErrorActionPreference = 'Stop'\nthrow (New-Object System.InvalidOperationException \"it's gone\")\n",
    };
    // defaultShell: sshd's DefaultShell is PowerShell, so the bootstrap runs inside an outer one.
    for (const scenario of [{}, { defaultShell: true }]) {
      hosts.reset(port, undefined, scenario);
      const ssh = await hosts.connect(port);
      try {
        const error = await new PowerShellSession(ssh, { host: 'hv01' }).run(broken, {}).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(PowerShellHostError);
        expect((error as Error).message).toBe(`broken on hv01 failed: it's gone`);
        expect((error as PowerShellHostError).details).toMatchObject({ exit: 1 });
      } finally {
        await ssh.close();
      }
    }
  });

  it("a cmdlet's error reaches the caller in the envelope, with DefaultShell too", async () => {
    for (const scenario of [{ throwOn: 'list_vms' }, { throwOn: 'list_vms', defaultShell: true }]) {
      hosts.reset(port, undefined, scenario);
      const ssh = await hosts.connect(port);
      try {
        const error = await new PowerShellSession(ssh, { host: 'hv01' })
          .run(SCRIPTS.list_vms, { lab: 'x' })
          .catch((e: unknown) => e);
        expect(error).toBeInstanceOf(PowerShellScriptError);
        expect((error as Error).message).toBe(
          `list_vms on hv01: Hyper-V was unable to find a virtual machine with name "it's gone".`,
        );
        expect((error as PowerShellScriptError).details).toMatchObject({
          fqid: 'InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM',
        });
      } finally {
        await ssh.close();
      }
    }
  });

  it('a script that outlives its timeout is stopped with a timeout error', async () => {
    hosts.reset(port, undefined, { sleepMs: 5000 });
    const ssh = await hosts.connect(port);
    const started = Date.now();
    try {
      const error = await new PowerShellSession(ssh, { host: 'hv01' })
        .run(SCRIPTS.list_vms, { lab: 'x' }, { timeoutMs: 600 })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SshTimeoutError);
      expect(Date.now() - started).toBeLessThan(4000);
    } finally {
      await ssh.close();
    }
  });

  it('a dropped connection is reported as such, and a new connection works again', async () => {
    hosts.reset(port, undefined, { dropOn: 'list_vms' });
    const ssh = await hosts.connect(port);
    try {
      const error = await new PowerShellSession(ssh, { host: 'hv01' })
        .run(SCRIPTS.list_vms, { lab: 'x' })
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      expect(error).toBeInstanceOf(PowerShellHostError);
      expect((error as Error).message).toBe('list_vms on hv01 failed: the connection ended without an exit status');
      expect((error as PowerShellHostError).hint).toContain('Re-run the command');
    } finally {
      await ssh.close().catch(() => {});
    }
    hosts.scenario(port, {});
    const again = await hosts.connect(port);
    try {
      expect(await new PowerShellSession(again, { host: 'hv01' }).run(SCRIPTS.list_vms, { lab: 'x' })).toEqual({
        vms: [],
      });
    } finally {
      await again.close();
    }
  });

  it('pwsh (PowerShell 7) gets the same bootstrap under its own name', async () => {
    hosts.reset(port);
    const ssh = await hosts.connect(port);
    try {
      expect(
        await new PowerShellSession(ssh, { host: 'hv01', flavor: 'pwsh' }).run(SCRIPTS.list_vms, { lab: 'x' }),
      ).toEqual({ vms: [] });
    } finally {
      await ssh.close();
    }
    expect(hosts.invocations(port)).toEqual([expect.objectContaining({ script: 'list_vms', shell: 'pwsh' })]);
  });

  it('a changed host key is refused before any PowerShell runs', async () => {
    hosts.reset(port);
    const error = await hosts.connect(port, hosts.changedKnownHosts(port)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SshHostKeyError);
    expect(hosts.invocations(port)).toEqual([]);
  });
});
