import type { LoadedLabFile } from '@labctl/core/spec';
import { PASSWORD_ENV, passwordFromEnvOrFile, resolveSettings } from '@labctl/delegation/options';
import { migrationDelegationFindings } from '@labctl/delegation/service';
import type { MigrationFinding } from './move.js';
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
  // Narrowed to one host, the others stay reachable as migration destinations.
  const peers = options.host
    ? hyperVHosts(options.lab.spec).filter((peer) => !hosts.some((host) => host.name === peer.name))
    : [];
  const debug = options.debug ?? debugRequested();
  const log = scriptRunLogger(options.labDir, debug);
  return new HyperVProvider({
    lab: options.lab.lab,
    hosts,
    ...(peers.length > 0 ? { peers } : {}),
    ...(settings.shell ? { flavor: settings.shell } : {}),
    debug,
    log,
    ...(options.lab.spec.delegation ? { delegationFindings: directoryFindings(options.lab) } : {}),
    connect: (host) => {
      const entry = [...hosts, ...peers].find((item) => item.name === host.name);
      return connectTarget(entry?.target ?? host.name, settings, entry?.proxyJump);
    },
  });
}

/**
 * The migration preflight's LDAP part, when the lab file has `delegation:` settings: one search for
 * the source and destination computer objects (the delegation commands' settings and password).
 */
function directoryFindings(lab: LoadedLabFile): (source: string, destination: string) => Promise<MigrationFinding[]> {
  return async (source, destination) => {
    const settings = await resolveSettings({ hosts: `${source},${destination}` }, lab, true);
    const password = await passwordFromEnvOrFile(settings.passwordFile);
    if (!password)
      return [
        {
          subject: source,
          problem: 'the directory cannot be read for the delegation check: no LDAP password',
          fix: `Set ${PASSWORD_ENV}, or delegation.passwordFile in labctl.yaml`,
        },
      ];
    return migrationDelegationFindings(
      settings,
      {
        url: settings.ldapUrl!,
        bindUser: settings.bindUser!,
        password,
        ...(settings.caFile ? { caFile: settings.caFile } : {}),
        insecure: settings.insecure,
      },
      source,
      destination,
    );
  };
}
