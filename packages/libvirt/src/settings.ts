import { homedir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '@labctl/core/errors';
import type { LibvirtProviderOptions } from './provider.js';

/**
 * The `libvirt:` section of labctl.yaml:
 *   libvirt:
 *     diskDir: /var/lib/labctl/disks   # overlays, console logs, domain XML (default: .labctl/disks)
 *     accelerator: auto                # auto (probe), kvm or tcg
 *     pool: default                    # storage pool for VM disks: always for a remote URI, opt-in locally
 */
export interface LibvirtSettings {
  diskDir?: string;
  accelerator?: 'auto' | 'kvm' | 'tcg';
  pool?: string;
}

const KEYS = new Set(['diskDir', 'accelerator', 'pool']);

export function parseLibvirtSettings(
  raw: Record<string, unknown> | undefined,
  resolvePath: (path: string) => string,
): LibvirtSettings {
  const settings: LibvirtSettings = {};
  for (const [key, value] of Object.entries(raw ?? {})) {
    if (!KEYS.has(key))
      throw new UsageError('LABFILE_INVALID', `labctl.yaml: libvirt.${key}: unknown key`, {
        hint: 'libvirt: takes diskDir, accelerator and pool.',
      });
    if (key === 'diskDir') {
      if (typeof value !== 'string' || !value)
        throw new UsageError('LABFILE_INVALID', 'labctl.yaml: libvirt.diskDir: expected a path');
      settings.diskDir = resolvePath(value.startsWith('~/') ? join(homedir(), value.slice(2)) : value);
    }
    if (key === 'pool') {
      if (typeof value !== 'string' || !/^[A-Za-z0-9_.+-]+$/.test(value))
        throw new UsageError('LABFILE_INVALID', 'labctl.yaml: libvirt.pool: expected a storage pool name');
      settings.pool = value;
    }
    if (key === 'accelerator') {
      if (value !== 'auto' && value !== 'kvm' && value !== 'tcg')
        throw new UsageError('LABFILE_INVALID', 'labctl.yaml: libvirt.accelerator: expected auto, kvm or tcg');
      settings.accelerator = value;
    }
  }
  return settings;
}

export function libvirtOptions(
  lab: string,
  labDir: string,
  uri: string | undefined,
  settings: LibvirtSettings,
): LibvirtProviderOptions {
  return {
    lab,
    ...(uri ? { uri } : {}),
    diskDir: settings.diskDir ?? join(labDir, '.labctl', 'disks'),
    ...(settings.accelerator ? { accelerator: settings.accelerator } : {}),
    ...(settings.pool ? { pool: settings.pool } : {}),
  };
}
