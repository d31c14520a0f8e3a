import { collectingSink } from '@labctl/core/events';
import { okFacts } from '@labctl/core/testing/results';
import { LocalExecError, LocalPowerShellRunner, LocalTimeoutError } from '@labctl/remote/local';
import {
  PowerShellHostError,
  PowerShellScriptError,
  PowerShellSession,
  type ScriptRunLog,
} from '@labctl/remote/powershell';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HyperVProvider } from './provider.js';
import { SCRIPTS } from './scripts/index.js';
import { LocalRecordedHost } from './testing/local-host.js';
import { labPlan, NASTY_VALUES, numbered } from './testing/plans.js';
import { requirePwsh } from './testing/sim-state.js';

/**
 * The local transport (labctl on the Hyper-V host itself): powershell.exe/pwsh started as a child
 * process with the same bootstrap and stdin as over SSH. The executable is the simulated host's
 * powershell.exe (scripts/testbed/hyperv-local.sh: a real pwsh with the Hyper-V simulator module),
 * found on PATH like the real one on Windows; nothing is mocked between labctl and that process.
 * Needs pwsh; no root, no sshd.
 */
const gate = requirePwsh('Hyper-V local transport tests (pwsh with the Hyper-V simulator)');

describe.skipIf(gate.skip)('PowerShell as a local process on a simulated Hyper-V host', () => {
  let host: LocalRecordedHost;
  let runner: LocalPowerShellRunner;
  beforeAll(() => {
    host = new LocalRecordedHost();
    runner = new LocalPowerShellRunner({ env: host.env() });
  });
  afterAll(() => host?.stop());

  it('runs a script with the same command line as over SSH; values stay data; the run is logged', async () => {
    host.reset();
    const logs: ScriptRunLog[] = [];
    const session = new PowerShellSession(runner, { host: 'local', log: (entry) => logs.push(entry), debug: true });
    for (const lab of NASTY_VALUES.slice(0, 6))
      expect(await session.run(SCRIPTS.list_vms, { lab })).toEqual({ vms: [] });
    expect(
      await new PowerShellSession(runner, { host: 'local', flavor: 'pwsh' }).run(SCRIPTS.list_vms, { lab: 'x' }),
    ).toEqual({ vms: [] });
    const seen = host.invocations();
    expect(seen.map((entry) => entry.shell)).toEqual([...Array(6).fill('powershell.exe'), 'pwsh']);
    expect(seen[0]?.commandLength).toBeLessThan(8191);
    expect(logs[0]).toMatchObject({
      script: 'list_vms',
      host: 'local',
      exit: 0,
      ok: true,
      scriptText: SCRIPTS.list_vms.text,
    });
  });

  it("a cmdlet's error comes back in the script's envelope with its type and FullyQualifiedErrorId", async () => {
    host.reset(undefined, { throwOn: 'list_vms' });
    const error = await new PowerShellSession(runner, { host: 'local' })
      .run(SCRIPTS.list_vms, { lab: 'x' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PowerShellScriptError);
    expect((error as Error).message).toBe(
      `list_vms on local: Hyper-V was unable to find a virtual machine with name "it's gone".`,
    );
    expect((error as PowerShellScriptError).details).toMatchObject({
      type: 'Microsoft.HyperV.PowerShell.VirtualizationException',
      fqid: 'InvalidParameter,Microsoft.HyperV.PowerShell.Commands.GetVM',
    });
  });

  it('an uncaught error (outside the envelope) comes back as the CLIXML error message with exit status 1', async () => {
    host.reset();
    const logs: ScriptRunLog[] = [];
    const broken = {
      name: 'broken',
      text: "# labctl-script: broken\nparam([string]$InputJson)\n$ErrorActionPreference = 'Stop'\nthrow (New-Object System.InvalidOperationException \"it's gone\")\n",
    };
    const error = await new PowerShellSession(runner, { host: 'local', log: (entry) => logs.push(entry) })
      .run(broken, {})
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PowerShellHostError);
    expect((error as Error).message).toBe(`broken on local failed: it's gone`);
    expect(logs[0]).toMatchObject({ exit: 1, ok: false });
  });

  it('a script that outlives its timeout is killed with a timeout error; the next run works', async () => {
    host.reset(undefined, { sleepMs: 5000 });
    const started = Date.now();
    const error = await new PowerShellSession(runner, { host: 'local' })
      .run(SCRIPTS.list_vms, { lab: 'x' }, { timeoutMs: 600 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LocalTimeoutError);
    expect(Date.now() - started).toBeLessThan(4000);
    host.scenario({});
    expect(await new PowerShellSession(runner, { host: 'local' }).run(SCRIPTS.list_vms, { lab: 'x' })).toEqual({
      vms: [],
    });
  });

  it('a process killed mid-run has no exit status and says so', async () => {
    host.reset(undefined, { dropOn: 'list_vms' });
    const error = await new PowerShellSession(runner, { host: 'local' })
      .run(SCRIPTS.list_vms, { lab: 'x' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PowerShellHostError);
    expect((error as PowerShellHostError).details).toMatchObject({ exit: null });
  });

  it('no powershell.exe on PATH: a typed error with a hint; only the bootstrap command line is run', async () => {
    const missing = new LocalPowerShellRunner({ env: { PATH: '/nonexistent' } });
    const error = await new PowerShellSession(missing, { host: 'local' })
      .run(SCRIPTS.list_vms, { lab: 'x' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LocalExecError);
    expect((error as LocalExecError).hint).toMatch(/powershell\.exe is not on PATH/);
    for (const command of ['rm -rf /tmp/x', 'powershell.exe -Command "Stop-Computer"', 'pwsh -EncodedCommand a;b']) {
      await expect(runner.exec(command)).rejects.toMatchObject({ code: 'LOCAL_COMMAND_REFUSED' });
    }
  });

  it('the provider creates, starts and finds 10 VMs in 4 local PowerShell runs, MACs in 00:15:5D', async () => {
    host.reset();
    const provider = new HyperVProvider({
      lab: 'local-lab',
      hosts: [{ name: 'hv01' }],
      connect: async () => new LocalPowerShellRunner({ env: host.env() }),
    });
    try {
      const vms = numbered('web', 10).map((vm, i) => ({ ...vm, mac: `00:15:5d:12:34:${10 + i}` }));
      const { checks } = await provider.preflight(labPlan('local-lab', vms));
      expect(checks.filter((check) => check.level === 'error')).toEqual([]);
      const records = okFacts(await provider.create(vms, collectingSink()));
      okFacts(await provider.start(records, collectingSink()));
      const reports = await provider.adapters(records);
      expect(
        reports.filter((report) => report.addresses.some((address) => address.startsWith('192.168.50.'))),
      ).toHaveLength(10);
      expect(records.map((record) => record.mac?.toLowerCase())).toEqual(vms.map((vm) => vm.mac));
    } finally {
      await provider.close();
    }
    expect(host.invocations().map((entry) => entry.script)).toEqual([
      'get_host_facts',
      'create_vms',
      'start_vms',
      'get_adapters',
    ]);
    expect(host.host().vms.map((vm) => vm.adapters[0]?.mac)).toEqual(
      Array.from({ length: 10 }, (_, i) => `00155D1234${10 + i}`),
    );
  });
});
