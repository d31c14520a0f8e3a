import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadedLabFile } from '@labctl/core/spec';
import type { ScriptRunLog } from '@labctl/remote/powershell';
import { HyperVProvider } from './provider.js';
import { hyperVHosts, LOCAL_TARGET, parseHyperVSettings } from './settings.js';

/**
 * The Hyper-V provider as the CLI makes it: hosts from labctl.yaml (or one named host), one SSH
 * connection per host with its host key pinned (known_hosts; a changed key is refused) or, for a
 * host whose address is `local`, PowerShell run on this machine as a child process, and every
 * PowerShell run appended to `.labctl/powershell.log` (script, host, duration, exit). With debug
 * on, the log entries carry the script text and its JSON input, and each run is echoed on stderr.
 */
export interface HyperVFactoryOptions {
  lab: LoadedLabFile;
  labDir: string;
  /** One host: a name from `hosts:` or an SSH target. */
  host?: string;
  debug?: boolean;
}

export function debugRequested(): boolean {
  return process.argv.includes('--debug') || /^(1|true|yes)$/i.test(process.env.LABCTL_DEBUG ?? '');
}

export function hyperVProvider(options: HyperVFactoryOptions): HyperVProvider {
  const settings = parseHyperVSettings(options.lab.spec.hyperv, options.lab.resolvePath);
  const hosts = hyperVHosts(options.lab.spec, options.host);
  const debug = options.debug ?? debugRequested();
  const logDir = join(options.labDir, '.labctl');
  const log = (entry: ScriptRunLog) => {
    try {
      mkdirSync(logDir, { recursive: true, mode: 0o700 });
      appendFileSync(join(logDir, 'powershell.log'), `${JSON.stringify({ at: new Date().toISOString(), ...entry })}\n`, { mode: 0o600 });
    } catch {
      // Logging must never fail a run.
    }
    if (debug) {
      process.stderr.write(`labctl: debug: ${entry.script} on ${entry.host}: exit ${entry.exit} in ${entry.durationMs} ms${entry.error ? ` (${entry.error})` : ''}\n`);
      if (entry.scriptText) process.stderr.write(`${entry.scriptText}\n# input: ${entry.inputJson}\n`);
    }
  };
  return new HyperVProvider({
    lab: options.lab.lab,
    hosts,
    ...(settings.shell ? { flavor: settings.shell } : {}),
    debug,
    log,
    connect: async (host) => {
      const target = hosts.find((item) => item.name === host.name)?.target ?? host.name;
      if (target === LOCAL_TARGET) {
        // labctl runs on the Hyper-V host: powershell.exe (or pwsh) as a child process, same scripts.
        const { LocalPowerShellRunner } = await import('@labctl/remote/local');
        return new LocalPowerShellRunner();
      }
      // Loaded on first connection only: making the provider (dry runs, --help) needs no SSH stack.
      const { connect } = await import('@labctl/remote/ssh');
      const ssh = await connect(target, {
        // A changed key is refused under both policies; accept-new only records a host never seen.
        hostKeyPolicy: settings.hostKeys ?? 'strict',
        ...(settings.knownHosts ? { knownHostsFile: settings.knownHosts } : {}),
        ...(settings.identityFile ? { identityFiles: [settings.identityFile] } : {}),
      });
      ssh.setNoDelay(true);
      return ssh;
    },
  });
}
