import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultHost, type FakeHost, type Scenario } from './recorded-hosts.js';
import { pwshPath, readSimulatedHost, writeSimulatedHost } from './sim-state.js';

/**
 * The simulated Hyper-V host as a local process (scripts/testbed/hyperv-local.sh): the same host
 * hyperv-hosts.sh puts behind sshd (a real pwsh with the Hyper-V simulator module), found on PATH
 * under the names powershell.exe and pwsh, as labctl's local transport finds the real one on
 * Windows. No root, no sshd.
 */
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');

export class LocalRecordedHost {
  readonly dir: string;
  /** Put first on PATH: holds powershell.exe and pwsh. */
  readonly bin: string;

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'hyperv-local-'));
    execFileSync(join(repoRoot, 'scripts/testbed/hyperv-local.sh'), ['up', this.dir], { stdio: 'pipe' });
    this.bin = join(this.dir, 'bin');
    this.reset();
  }

  private file(name: string): string {
    return join(this.dir, 'hv', 'local', name);
  }

  /**
   * Runs PowerShell commands on the simulated host as an administrator at its console would (for
   * setting a scene, e.g. Checkpoint-VM, or running a command labctl prints as a hint).
   */
  pwsh(command: string, env: NodeJS.ProcessEnv = {}): string {
    const pwsh = pwshPath();
    if (!pwsh) throw new Error('pwsh is not installed (./scripts/setup.sh)');
    const simulator = join(repoRoot, 'packages/hyperv/simulator');
    return execFileSync(
      pwsh,
      ['-NoProfile', '-NonInteractive', '-Command', `$ErrorActionPreference = 'Stop'; ${command}`],
      {
        encoding: 'utf8',
        env: {
          ...process.env,
          PSModulePath: [join(simulator, 'windows'), join(simulator, 'modules')].join(':'),
          LABCTL_HYPERV_SIM: this.stateDir,
          LABCTL_HYPERV_SIM_DLL: join(this.dir, 'hv', 'hyperv-sim.dll'),
          COMPUTERNAME: 'HV-FAKE',
          ...env,
        },
      },
    );
  }

  /** This process's environment with the simulated host's powershell.exe first on PATH. */
  env(): NodeJS.ProcessEnv {
    return { ...process.env, PATH: `${this.bin}:${process.env.PATH ?? ''}` };
  }

  /** The host's state directory. */
  get stateDir(): string {
    return join(this.dir, 'hv', 'local');
  }

  reset(host: FakeHost = defaultHost(), scenario: Scenario = {}): void {
    writeSimulatedHost(this.stateDir, host, scenario);
  }

  scenario(scenario: Scenario): void {
    writeFileSync(this.file('scenario.json'), JSON.stringify(scenario));
  }

  host(): FakeHost {
    return readSimulatedHost(this.stateDir);
  }

  invocations(): Array<{ script: string; shell: string; commandLength: number; vms?: number }> {
    return readFileSync(this.file('invocations.log'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line));
  }

  stop(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}
