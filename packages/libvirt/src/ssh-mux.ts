import { chmodSync, lstatSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * One SSH connection per libvirt host for a whole run. Over qemu+ssh:// every virsh call starts its
 * own `ssh` (0.4-0.5 s each to a remote host). libvirt runs the command the URI's `command=` names in
 * place of `ssh`, with the same arguments; labctl names a two-line wrapper that adds OpenSSH's
 * connection sharing (ControlMaster=auto, a socket per host in a short 0700 directory, kept 5 s after the
 * last call), so the first call opens the connection and the others ride on it.
 *
 * The wrapper is this run's own (`ssh-mux/run-PID`, removed when the process exits): libvirt starts
 * the command with a cleaned environment, so the run is named in the file, and a connection is never
 * shared between two runs: every run checks the host key afresh. Host-key checking and
 * authentication are OpenSSH's own, exactly as without the wrapper. A URI that names its own
 * command= (or is not qemu+ssh) is used as it is; LABCTL_SSH_MUX=0 turns it off.
 */
export function withSshMux(uri: string, env: NodeJS.ProcessEnv = process.env): string {
  if (!/^[a-z0-9]+\+ssh:\/\//i.test(uri) || /[?&]command=/.test(uri) || env.LABCTL_SSH_MUX === '0') return uri;
  const wrapper = runWrapper(env);
  if (!wrapper) return uri;
  return `${uri}${uri.includes('?') ? '&' : '?'}command=${encodeURIComponent(wrapper)}`;
}

/**
 * A socket directory the wrapper can name: nothing that needs quoting in the script, and short
 * enough for a socket's name (107 bytes on Linux) with what OpenSSH adds: /%C (41), -PID, and a
 * 17-character temporary suffix while the master starts.
 */
export function usableSocketDir(dir: string, pid = process.pid): boolean {
  return !/["'$`\n\\]/.test(dir) && Buffer.byteLength(dir) + 41 + 1 + String(pid).length + 17 <= 107;
}

let written: string | undefined;

/** Writes this run's wrapper once; undefined when it cannot (then virsh runs plain ssh). */
function runWrapper(env: NodeJS.ProcessEnv): string | undefined {
  if (written) return written;
  try {
    const wrappers = join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'labctl', 'ssh-mux');
    const sockets = socketDir(env);
    if (!sockets || !usableSocketDir(sockets)) return undefined;
    mkdirSync(wrappers, { recursive: true, mode: 0o700 });
    chmodSync(wrappers, 0o700);
    removeDeadWrappers(wrappers);
    const file = join(wrappers, `run-${process.pid}`);
    writeFileSync(
      file,
      [
        '#!/bin/sh',
        `# labctl run ${process.pid}: OpenSSH for libvirt qemu+ssh:// URIs, one shared connection per host (ssh-mux.ts).`,
        `exec ssh -o ControlMaster=auto -o 'ControlPath=${sockets}/%C-${process.pid}' -o ControlPersist=5 "$@"`,
        '',
      ].join('\n'),
      { mode: 0o700 },
    );
    process.once('exit', () => rmSync(file, { force: true }));
    written = file;
    return file;
  } catch {
    return undefined;
  }
}

/**
 * Where the sockets go: short, because a socket's path is limited to about 100 bytes. $XDG_RUNTIME_DIR
 * when set (/run/user/UID), else a directory of this user's in the temporary directory, made 0700
 * and used only when it is a real directory this user owns.
 */
function socketDir(env: NodeJS.ProcessEnv): string | undefined {
  const uid = process.getuid?.() ?? 0;
  const dir = env.XDG_RUNTIME_DIR ? join(env.XDG_RUNTIME_DIR, 'labctl-ssh') : join(tmpdir(), `labctl-ssh-${uid}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const info = lstatSync(dir);
  if (!info.isDirectory() || info.uid !== uid) return undefined;
  chmodSync(dir, 0o700);
  return dir;
}

/** Wrappers of runs that ended without removing theirs (killed): their process is gone. */
function removeDeadWrappers(dir: string): void {
  for (const name of readdirSync(dir)) {
    const pid = Number(/^run-(\d+)$/.exec(name)?.[1]);
    if (!pid || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') rmSync(join(dir, name), { force: true });
    }
  }
}
