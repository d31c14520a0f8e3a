import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Test helper: the project's real sshd test hosts (scripts/testbed/ssh-hosts.sh). Each suite picks
 * its own DIR and base port. Users: labctl-np (sudo without password), labctl-pw (sudo password
 * SSH_TESTBED_SUDO_PASSWORD).
 */
export const SSH_HOSTS_SCRIPT = fileURLToPath(new URL('../../../scripts/testbed/ssh-hosts.sh', import.meta.url));
export const SSH_TESTBED_SUDO_PASSWORD = 'LabPw-123';

export interface SshTestHosts {
  dir: string;
  ports: number[];
  /** Every host's keys as `[127.0.0.1]:PORT type base64`. */
  knownHostsFile: string;
  identityFile: string;
  /** A key no host accepts. */
  wrongIdentityFile: string;
  /** The sshd master's pid per host (to enter its mount namespace). */
  sshdPid(index: number): Promise<number>;
  stop(): Promise<void>;
}

/**
 * Run a testbed script and wait for it to exit. It leaves daemons behind that inherit its stdout,
 * so waiting for the pipes to close (execFile) would hang: wait for the exit instead.
 */
export function runTestbedScript(script: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(script, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      child.stdout.destroy();
      child.stderr.destroy();
      if (code === 0) resolve(output);
      else reject(new Error(`${script} ${args.join(' ')} exited ${code}: ${output}`));
    });
  });
}

export async function startSshHosts(dir: string, count: number, basePort: number): Promise<SshTestHosts> {
  await runTestbedScript(SSH_HOSTS_SCRIPT, ['up', dir, String(count), String(basePort)]);
  return {
    dir,
    ports: Array.from({ length: count }, (_, i) => basePort + i + 1),
    knownHostsFile: join(dir, 'known_hosts'),
    identityFile: join(dir, 'client/id_ed25519'),
    wrongIdentityFile: join(dir, 'client/wrong_ed25519'),
    sshdPid: async (index) => Number((await readFile(join(dir, `h${index + 1}/sshd.pid`), 'utf8')).trim()),
    stop: () => runTestbedScript(SSH_HOSTS_SCRIPT, ['down', dir]).then(() => undefined),
  };
}

export const SSH_JUMP_SCRIPT = fileURLToPath(new URL('../../../scripts/testbed/ssh-jump.sh', import.meta.url));

/** scripts/testbed/ssh-jump.sh's bed: a bastion and a target sshd, each in a network namespace. */
export interface SshJumpBed {
  dir: string;
  /** jump.env: JUMP_BASTION_ADDR/PORT, JUMP_TARGET_ADDR/PORT, JUMP_TARGET_GATEWAY (the bastion's side). */
  env: Record<string, string>;
  identityFile: string;
  knownHostsFile: string;
  stop(): Promise<void>;
}

export async function startJumpBed(prefix: string, basePort: number): Promise<SshJumpBed> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  // Output to a file: the sshd it leaves running would keep a pipe open forever.
  await runTestbedScript('sh', ['-c', '"$0" up "$1" "$2" > "$1/up.log" 2>&1', SSH_JUMP_SCRIPT, dir, String(basePort)]);
  const env = Object.fromEntries(
    (await readFile(join(dir, 'jump.env'), 'utf8'))
      .trim()
      .split('\n')
      .map((line) => line.split('=') as [string, string]),
  );
  return {
    dir,
    env,
    identityFile: join(dir, 'client', 'id_ed25519'),
    knownHostsFile: join(dir, 'known_hosts'),
    stop: async () => {
      await runTestbedScript('sh', ['-c', '"$0" down "$1" > "$1/down.log" 2>&1', SSH_JUMP_SCRIPT, dir]).catch(
        () => undefined,
      );
      await rm(dir, { recursive: true, force: true });
    },
  };
}
