import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ScriptRunLog } from '@labctl/remote/powershell';
import type { ClosableRunner } from './provider.js';
import { type HyperVSettings, LOCAL_TARGET } from './settings.js';

/**
 * How labctl reaches a Hyper-V host and records what it ran there, shared by the provider and the
 * delegation `--configure-hosts` step so both pin keys and log the same way.
 */

/** Every PowerShell run appended to `<lab>/.labctl/powershell.log`; with debug, echoed on stderr with its script. */
export function scriptRunLogger(labDir: string, debug: boolean): (entry: ScriptRunLog) => void {
  const logDir = join(labDir, '.labctl');
  return (raw) => {
    const entry = raw.inputJson ? { ...raw, inputJson: redactInput(raw.inputJson) } : raw;
    try {
      mkdirSync(logDir, { recursive: true, mode: 0o700 });
      appendFileSync(
        join(logDir, 'powershell.log'),
        `${JSON.stringify({ at: new Date().toISOString(), ...entry })}\n`,
        { mode: 0o600 },
      );
    } catch {
      // Logging must never fail a run.
    }
    if (debug) {
      process.stderr.write(
        `labctl: debug: ${entry.script} on ${entry.host}: exit ${entry.exit} in ${entry.durationMs} ms${entry.error ? ` (${entry.error})` : ''}\n`,
      );
      if (entry.scriptText) process.stderr.write(`${entry.scriptText}\n# input: ${entry.inputJson}\n`);
    }
  };
}

/**
 * A script input as it may be logged: each VM's seed disk carries its private host keys, so only
 * its size is shown (in powershell.log and on stderr with --debug).
 */
export function redactInput(inputJson: string): string {
  try {
    return JSON.stringify(JSON.parse(inputJson), (key, value: unknown) =>
      key === 'seed' && typeof value === 'string'
        ? `<seed disk: ${value.length} base64 characters with private host keys, not shown>`
        : value,
    );
  } catch {
    return '<input not shown>';
  }
}

/**
 * A runner for one host target: `local` is PowerShell on this machine as a child process; anything
 * else is SSH with the host key pinned (known_hosts; a changed key is refused under both policies,
 * accept-new only records a host never seen).
 */
export async function connectTarget(
  target: string,
  settings: HyperVSettings,
  proxyJump?: string,
): Promise<ClosableRunner> {
  if (target === LOCAL_TARGET) {
    const { LocalPowerShellRunner } = await import('@labctl/remote/local');
    return new LocalPowerShellRunner();
  }
  // Loaded on first connection only: making a provider (dry runs, --help) needs no SSH stack.
  const { connect } = await import('@labctl/remote/ssh');
  const ssh = await connect(target, {
    hostKeyPolicy: settings.hostKeys ?? 'strict',
    ...(settings.knownHosts ? { knownHostsFile: settings.knownHosts } : {}),
    ...(settings.identityFile ? { identityFiles: [settings.identityFile] } : {}),
    // Without one here, the ProxyJump of the user's ssh config applies, as it would for ssh.
    ...(proxyJump ? { proxyJump } : {}),
  });
  ssh.setNoDelay(true);
  return ssh;
}
