import type { Check } from '@labctl/core/checks';
import { LabctlError } from '@labctl/core/errors';

/** What went wrong reaching libvirt, and what a URI says about host-key checking. */
export class LibvirtError extends LabctlError {}

/** Local URIs: the neighbour table of this machine is the hypervisor's (the bridge lives here). */
export function isLocalUri(uri: string): boolean {
  return (
    /^[a-z0-9+]+:\/\/\/(system|session)/.test(uri) &&
    !uri.includes('+ssh') &&
    !uri.includes('+tcp') &&
    !uri.includes('+tls')
  );
}

/**
 * What a remote URI says about host-key checking. labctl passes URIs to virsh as given and never adds
 * `no_verify`; these checks only say what the URI the user wrote will do.
 */
export function remoteUriChecks(uri: string): Check[] {
  if (isLocalUri(uri)) return [];
  const query = new URLSearchParams(/\?(.*)$/.exec(uri)?.[1] ?? '');
  const checks: Check[] = [];
  if (/^(1|yes|true)$/i.test(query.get('no_verify') ?? '')) {
    checks.push({
      id: 'libvirt.hostkey',
      level: 'warning',
      message: `${uri.replace(/\?.*$/, '')}: no_verify is set in the URI, so the libvirt host's SSH key is not checked`,
      hint: 'Remove no_verify from the URI and pin the host key (~/.ssh/known_hosts for qemu+ssh, known_hosts= for qemu+libssh).',
    });
  }
  const transport = /^[a-z0-9]+\+([a-z0-9]+):/i.exec(uri)?.[1]?.toLowerCase();
  if (transport === 'ssh' && query.has('known_hosts')) {
    checks.push({
      id: 'libvirt.hostkey',
      level: 'warning',
      message:
        'known_hosts= in a qemu+ssh:// URI is not used: the ssh transport runs OpenSSH, which checks ~/.ssh/known_hosts (and ssh_config)',
      hint: 'Pin the host key in ~/.ssh/known_hosts, or use qemu+libssh://... where known_hosts= is honoured.',
    });
  }
  return checks;
}

const CONNECT_HINT =
  'Is libvirtd running (and virtlogd)? Check the URI (--uri, uri: in labctl.yaml) and your rights (group libvirt).';

export function connectHint(uri: string, err: unknown): string {
  const text = `${(err as Error)?.message ?? ''} ${JSON.stringify((err as { details?: unknown })?.details ?? '')}`;
  if (
    /host key verification failed|HOST IDENTIFICATION HAS CHANGED|HOST KEY VERIFICATION FAILED|was not accepted/i.test(
      text,
    )
  ) {
    return /^[a-z0-9]+\+libssh2?:/i.test(uri)
      ? "The libvirt host's SSH key is not the one pinned in the URI's known_hosts= file. Check the host's key (ssh-keyscan, compare fingerprints) before you change that file."
      : "The libvirt host's SSH key is not the one pinned in ~/.ssh/known_hosts (OpenSSH runs the qemu+ssh transport). Check the host's key before you change that file; labctl never turns the check off.";
  }
  if (/nc: not found|nc: command not found|netcat/i.test(text))
    return 'The libvirt host needs nc (netcat-openbsd) for a ?socket= URI, or virt-ssh-helper.';
  return CONNECT_HINT;
}

/**
 * A failure to reach libvirt at all: "cannot connect to <uri>: <cause>" with a hint. Exit 1: the
 * input may be right and the daemon down; nothing was changed either way.
 */
export function connectError(uri: string, err: unknown): unknown {
  const text = `${(err as Error)?.message ?? ''} ${JSON.stringify((err as { details?: unknown })?.details ?? '')}`;
  if (
    !/failed to connect to the hypervisor|failed to connect socket|no connection driver|cannot recv data|End of file while reading data/i.test(
      text,
    )
  )
    return err;
  const reason = (err as Error).message.replace(/^virsh \S+: /, '');
  return new LibvirtError('LIBVIRT_CONNECT', `cannot connect to libvirt at ${uri.replace(/\?.*$/, '')}: ${reason}`, {
    hint: connectHint(uri, err),
    cause: err,
    details: { uri, ...((err as { details?: Record<string, unknown> }).details ?? {}) },
  });
}
