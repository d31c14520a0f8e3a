import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * One SSH connection per libvirt host for a whole run. Over qemu+ssh:// every virsh call starts its
 * own `ssh` (0.4-0.5 s each to a remote host). libvirt runs the command the URI's `command=` names in
 * place of `ssh`, with the same arguments; labctl names a two-line wrapper that adds OpenSSH's
 * connection sharing (ControlMaster=auto, a socket per host and labctl run in a 0700 directory, kept
 * 5 s after the last call), so the first call opens the connection and the others ride on it. The
 * run's id (LABCTL_SSH_MUX_RUN, this process's pid, inherited by virsh) is part of the socket's name:
 * a connection is never shared between two runs, so every run checks the host key afresh.
 * Host-key checking and authentication are OpenSSH's own, exactly as without the wrapper. A URI
 * that names its own command= (or is not qemu+ssh) is used as it is; LABCTL_SSH_MUX=0 turns it off.
 */
export function withSshMux(uri: string, env: NodeJS.ProcessEnv = process.env): string {
  if (!/^[a-z0-9]+\+ssh:\/\//i.test(uri) || /[?&]command=/.test(uri) || env.LABCTL_SSH_MUX === '0') return uri;
  // Set once per process: virsh and its ssh inherit it (see the wrapper's ControlPath).
  if (env === process.env) process.env.LABCTL_SSH_MUX_RUN ??= String(process.pid);
  const wrapper = muxWrapper(env);
  if (!wrapper) return uri;
  return `${uri}${uri.includes('?') ? '&' : '?'}command=${encodeURIComponent(wrapper)}`;
}

/** Writes (once per content) `$XDG_CACHE_HOME/labctl/ssh-mux`; undefined when it cannot. */
function muxWrapper(env: NodeJS.ProcessEnv): string | undefined {
  try {
    const dir = join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'labctl');
    const sockets = join(dir, 'ssh');
    mkdirSync(sockets, { recursive: true, mode: 0o700 });
    chmodSync(sockets, 0o700);
    // A path that would need quoting in the script: not worth it, go without.
    if (/["'$`\n\\]/.test(sockets)) return undefined;
    const file = join(dir, 'ssh-mux');
    const text = [
      '#!/bin/sh',
      '# labctl: OpenSSH for libvirt qemu+ssh:// URIs, one shared connection per host (see ssh-mux.ts).',
      `exec ssh -o ControlMaster=auto -o "ControlPath=${sockets}/%C-\${LABCTL_SSH_MUX_RUN:-0}" -o ControlPersist=5 "$@"`,
      '',
    ].join('\n');
    let current: string | undefined;
    try {
      current = readFileSync(file, 'utf8');
    } catch {
      current = undefined;
    }
    if (current !== text) {
      const temporary = `${file}.${process.pid}.tmp`;
      writeFileSync(temporary, text, { mode: 0o700 });
      renameSync(temporary, file);
    }
    return file;
  } catch {
    return undefined;
  }
}
