import { homedir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '@labctl/core/errors';
import type { LabSpec } from '@labctl/core/spec';

/**
 * The libvirt hosts of a lab, from `hosts:` in labctl.yaml:
 *   hosts:
 *     - name: kvm1
 *       uri: qemu+ssh://root@kvm1.lab/system   # or address/user/port: qemu+ssh://user@address:port/system
 *       pool: default                          # remote: the storage pool for VM disks
 *       path: /srv/labctl/disks                # local URI: the directory for VM disks
 *       concurrency: 4                         # VMs made at the same time on this host
 *       memoryLimit: 32768                     # MiB the lab may place on this host
 * A lab without `hosts:` has one host: its `uri:` (or $LIBVIRT_DEFAULT_URI, else qemu:///system).
 */
export interface LibvirtHost {
  name: string;
  uri: string;
  diskDir?: string;
  pool?: string;
  concurrency?: number;
  memoryLimitMiB?: number;
}

/** A URI virsh takes as one argument: a scheme, no whitespace or control characters, no leading dash. */
const URI = /^[a-z][a-z0-9+]*:\/\/[^\s\x00-\x1f\x7f]*$/i;

export function libvirtHosts(spec: LabSpec, resolvePath: (path: string) => string): LibvirtHost[] {
  return (spec.hosts ?? []).map((host) => {
    const where = `labctl.yaml: hosts: ${host.name}`;
    let uri = host.uri;
    if (!uri && host.address) {
      uri =
        host.address === 'local'
          ? 'qemu:///system'
          : `qemu+ssh://${host.user ? `${encodeURIComponent(host.user)}@` : ''}${host.address}${host.port ? `:${host.port}` : ''}/system`;
    }
    if (!uri)
      throw new UsageError('LABFILE_INVALID', `${where}: no uri (or address) to reach libvirt on this host`, {
        hint: 'Give each libvirt host a uri: (qemu+ssh://user@host/system, qemu:///system) or an address:.',
      });
    if (!URI.test(uri) || (host.address && !/^[A-Za-z0-9.:[\]_-]+$/.test(host.address)))
      throw new UsageError('LABFILE_INVALID', `${where}: ${JSON.stringify(uri)} is not a libvirt URI`, {
        hint: 'Write it as virsh takes it: qemu:///system, qemu+ssh://user@host[:port]/system[?...].',
      });
    const path = host.path?.startsWith('~/') ? join(homedir(), host.path.slice(2)) : host.path;
    return {
      name: host.name,
      uri,
      ...(path ? { diskDir: resolvePath(path) } : {}),
      ...(host.pool ? { pool: host.pool } : {}),
      ...(host.concurrency ? { concurrency: host.concurrency } : {}),
      ...(host.memoryLimit ? { memoryLimitMiB: host.memoryLimit } : {}),
    };
  });
}
