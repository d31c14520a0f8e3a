import type { LoadedLabFile } from '@labctl/core/spec';
import { connectTarget, scriptRunLogger } from './connect.js';
import { HyperVProvider } from './provider.js';
import { hyperVHosts, parseHyperVSettings } from './settings.js';

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
  const log = scriptRunLogger(options.labDir, debug);
  return new HyperVProvider({
    lab: options.lab.lab,
    hosts,
    ...(settings.shell ? { flavor: settings.shell } : {}),
    debug,
    log,
    connect: (host) => connectTarget(hosts.find((item) => item.name === host.name)?.target ?? host.name, settings),
  });
}
