import { UsageError } from '@labctl/core/errors';
import { join, resolve } from 'node:path';
import { STATE_DIR } from '@labctl/core/state';
import { KNOWN_HOSTS_FILE, type LabSource, loadInventory, writeKnownHostsInStateDir } from './service.js';
import type { SkippedVm } from './model.js';

/**
 * OpenSSH for the lab's VMs, the way the inventory reaches them: the same address, user, port and
 * key, and the host keys pinned in `.labctl/known_hosts` under the VM's name (HostKeyAlias), checked
 * strictly. `labctl ssh` runs ssh with these options; `labctl ssh-config` prints them as Host blocks.
 */
export interface SshTarget {
  name: string;
  address: string;
  port?: number;
  user?: string;
  keyFile?: string;
  /** `ssh -J` jump hosts; they are checked against the user's own known_hosts and ssh_config. */
  proxyJump?: string;
}

export interface SshTargets {
  targets: SshTarget[];
  skipped: SkippedVm[];
  knownHostsFile: string;
  warnings: string[];
}

/** Every reachable VM of the lab, with known_hosts written (only when it changed) to .labctl/known_hosts. */
export async function sshTargets(source: LabSource): Promise<SshTargets> {
  const knownHostsFile = join(resolve(source.labDir), STATE_DIR, KNOWN_HOSTS_FILE);
  const built = await loadInventory(source, knownHostsFile);
  await writeKnownHostsInStateDir(knownHostsFile, built);
  const targets = built.inventory.hosts.map((host): SshTarget => {
    const vars = host.vars;
    return {
      name: host.name,
      address: String(vars.ansible_host),
      ...(typeof vars.ansible_port === 'number' ? { port: vars.ansible_port } : {}),
      ...(typeof vars.ansible_user === 'string' ? { user: vars.ansible_user } : {}),
      ...(typeof vars.ansible_ssh_private_key_file === 'string' ? { keyFile: vars.ansible_ssh_private_key_file } : {}),
      ...(host.proxyJump ? { proxyJump: host.proxyJump } : {}),
    };
  });
  return { targets, skipped: built.skipped, knownHostsFile, warnings: built.warnings };
}

/**
 * A value for ssh's command line or ssh_config: one line, no double quote; quoted when it has
 * whitespace; `%` doubled where ssh expands %-tokens (file paths).
 */
function sshValue(value: string, what: string, tokens: boolean): string {
  if (/["\u0000-\u001f\u007f]/.test(value))
    throw new UsageError(
      'SSH_BAD_VALUE',
      `${what} ${JSON.stringify(value)} cannot be given to ssh: it has a double quote or a control character`,
      {
        hint: 'Rename the file or the user so it has neither.',
      },
    );
  const escaped = tokens ? value.replaceAll('%', '%%') : value;
  return /\s/.test(escaped) ? `"${escaped}"` : escaped;
}

/** ssh's arguments for one VM, then the remote command (ssh joins its words, as always). */
export function sshArgv(
  target: SshTarget,
  knownHostsFile: string,
  command: readonly string[] = [],
  // labctl's `ssh -F` (docs/ssh.md): the jump hosts are resolved in it too.
  sshConfigFile: string | undefined = process.env.LABCTL_SSH_CONFIG || undefined,
): string[] {
  return [
    ...(sshConfigFile ? ['-F', sshConfigFile] : []),
    '-o',
    `UserKnownHostsFile=${sshValue(knownHostsFile, 'known_hosts file', true)}`,
    '-o',
    'GlobalKnownHostsFile=/dev/null',
    '-o',
    'StrictHostKeyChecking=yes',
    '-o',
    `HostKeyAlias=${target.name}`,
    ...(target.port !== undefined ? ['-p', String(target.port)] : []),
    ...(target.user !== undefined ? ['-l', target.user] : []),
    // Options given here apply to the VM only; the jump hosts use the user's own ssh_config and known_hosts.
    ...(target.proxyJump !== undefined ? ['-J', target.proxyJump] : []),
    ...(target.keyFile !== undefined
      ? // Not -i: ssh stats -i's word as given, then expands %-tokens in it, so a path with a % or a
        // space breaks there; -o IdentityFile is read like a config line (quotes, %%).
        ['-o', `IdentityFile=${sshValue(target.keyFile, 'key file', true)}`, '-o', 'IdentitiesOnly=yes']
      : []),
    '--',
    target.address,
    ...command,
  ];
}

/** Host blocks for ~/.ssh/config (`Include`): `ssh web-01` then works as `labctl ssh web-01` does. */
export function sshConfigText(lab: string, targets: readonly SshTarget[], knownHostsFile: string): string {
  const lines = [
    `# labctl ssh-config for lab ${JSON.stringify(lab).replace(/[\r\n]/g, ' ')}: Include this file from ~/.ssh/config.`,
  ];
  for (const target of targets) {
    if (target.user !== undefined && target.user.includes('%'))
      throw new UsageError(
        'SSH_BAD_VALUE',
        `user ${JSON.stringify(target.user)} of ${target.name} has a "%", which ssh_config expands`,
      );
    lines.push(
      '',
      `Host ${target.name}`,
      `  HostName ${sshValue(target.address, 'address', false)}`,
      `  HostKeyAlias ${target.name}`,
      ...(target.user !== undefined ? [`  User ${sshValue(target.user, 'user', false)}`] : []),
      ...(target.port !== undefined ? [`  Port ${target.port}`] : []),
      ...(target.proxyJump !== undefined ? [`  ProxyJump ${target.proxyJump}`] : []),
      ...(target.keyFile !== undefined
        ? [`  IdentityFile ${sshValue(target.keyFile, 'key file', true)}`, '  IdentitiesOnly yes']
        : []),
      `  UserKnownHostsFile ${sshValue(knownHostsFile, 'known_hosts file', true)}`,
      '  StrictHostKeyChecking yes',
    );
  }
  return `${lines.join('\n')}\n`;
}

/** A POSIX shell word for `--print`: unchanged when safe, else single-quoted. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_./:@%+,=-]+$/.test(word) ? word : `'${word.replaceAll("'", `'"'"'`)}'`;
}
