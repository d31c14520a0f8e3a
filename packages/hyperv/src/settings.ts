import { UsageError } from '@labctl/core/errors';
import { checkName } from '@labctl/core/names';
import type { LabSpec } from '@labctl/core/spec';
import type { HyperVHostConfig } from './provider.js';

/**
 * The `hyperv:` section of labctl.yaml and the Hyper-V hosts from `hosts:`:
 *   hyperv:
 *     knownHosts: ~/.ssh/known_hosts   # host keys of the Hyper-V hosts (pinned; never accepted blindly)
 *     identityFile: ~/.ssh/id_ed25519  # key to log in with (default: ssh config, agent, ~/.ssh/id_*)
 *     shell: powershell                # powershell (Windows PowerShell 5.1) or pwsh (PowerShell 7)
 *     hostKeys: strict                 # strict (default): only known keys; accept-new: record a new host's key on first use
 *   hosts:
 *     - { name: hv01, address: admin@hv01.lab.example, path: 'D:\Labs', concurrency: 2 }
 */
export interface HyperVSettings {
  knownHosts?: string;
  identityFile?: string;
  shell?: 'powershell' | 'pwsh';
  hostKeys?: 'strict' | 'accept-new';
}

export interface HyperVHostTarget extends HyperVHostConfig {
  /** SSH target: user@host[:port], or `local`: PowerShell on this machine, no SSH. */
  target: string;
  /** Jump hosts to reach it through (`ssh -J` syntax), from the lab file's hosts: entry. */
  proxyJump?: string;
}

/** The address of a host that is this machine: labctl runs PowerShell locally (no SSH). */
export const LOCAL_TARGET = 'local';

const KEYS = new Set(['knownHosts', 'identityFile', 'shell', 'hostKeys']);

export function parseHyperVSettings(
  raw: Record<string, unknown> | undefined,
  resolvePath: (path: string) => string,
): HyperVSettings {
  const settings: HyperVSettings = {};
  for (const [key, value] of Object.entries(raw ?? {})) {
    if (!KEYS.has(key))
      throw new UsageError('LABFILE_INVALID', `labctl.yaml: hyperv.${key}: unknown key`, {
        hint: 'hyperv: takes knownHosts, identityFile, shell and hostKeys.',
      });
    if (key === 'shell') {
      if (value !== 'powershell' && value !== 'pwsh')
        throw new UsageError('LABFILE_INVALID', 'labctl.yaml: hyperv.shell: expected powershell or pwsh');
      settings.shell = value;
    } else if (key === 'hostKeys') {
      if (value !== 'strict' && value !== 'accept-new')
        throw new UsageError('LABFILE_INVALID', 'labctl.yaml: hyperv.hostKeys: expected strict or accept-new');
      settings.hostKeys = value;
    } else {
      if (typeof value !== 'string' || !value)
        throw new UsageError('LABFILE_INVALID', `labctl.yaml: hyperv.${key}: expected a path`);
      settings[key as 'knownHosts' | 'identityFile'] = resolvePath(value);
    }
  }
  return settings;
}

/**
 * The Hyper-V hosts of a lab: `hosts:` from labctl.yaml; `only` (a --host or --uri value, or the host
 * a VM record names) narrows them to one, or names a host that is not in the file (its SSH target).
 * A host whose address is `local` is this machine (no SSH); so is the lab's only host when there is
 * no `hosts:` and labctl runs on Windows, or when `--host local` is given.
 */
export function hyperVHosts(
  spec: LabSpec,
  only?: string,
  platform: NodeJS.Platform = process.platform,
): HyperVHostTarget[] {
  const hosts = (spec.hosts ?? []).map((host): HyperVHostTarget => {
    const base = host.address ?? host.name;
    if (base === LOCAL_TARGET) {
      return {
        name: host.name,
        target: LOCAL_TARGET,
        ...(host.path ? { path: host.path } : {}),
        ...(host.concurrency ? { concurrency: host.concurrency } : {}),
      };
    }
    const withUser = host.user && !base.includes('@') ? `${host.user}@${base}` : base;
    const target = host.port && !/:\d+$/.test(withUser) ? `${withUser}:${host.port}` : withUser;
    return {
      name: host.name,
      target,
      ...(host.path ? { path: host.path } : {}),
      ...(host.concurrency ? { concurrency: host.concurrency } : {}),
      ...(host.proxyJump ? { proxyJump: host.proxyJump } : {}),
    };
  });
  if (!only || only === LOCAL_TARGET) {
    if (hosts.length === 0 && (only === LOCAL_TARGET || platform === 'win32'))
      return [{ name: LOCAL_TARGET, target: LOCAL_TARGET }];
    return hosts;
  }
  const named = hosts.filter((host) => host.name === only || host.target === only);
  if (named.length > 0) return named;
  const name = only.replace(/^[^@]*@/, '').replace(/:\d+$/, '');
  checkName('host', name, '--host');
  return [{ name, target: only }];
}
