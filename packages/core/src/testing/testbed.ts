import { execFileSync } from 'node:child_process';

/**
 * Gates for tests that need real parts (root, network namespaces, Samba, sshd, libvirt, ansible).
 * Run by hand without them, the tests skip and say why. In CI (`CI=true`) a missing part is a
 * failure, not a skip: CI must run every test for real.
 */
export interface Gate {
  skip: boolean;
  reason: string;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

export function hasCommand(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v "$1"`, 'sh', command], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function requireTestbed(what: string, needs: { root?: boolean; commands?: string[] }): Gate {
  const missing: string[] = [];
  if (needs.root && !isRoot()) missing.push('root');
  for (const command of needs.commands ?? []) if (!hasCommand(command)) missing.push(`\`${command}\``);
  if (missing.length === 0) return { skip: false, reason: '' };
  const reason = `${what} needs ${missing.join(', ')} (run ./scripts/setup.sh as root, or ./scripts/test.sh)`;
  if (/^(1|true)$/i.test(process.env.CI ?? '')) throw new Error(`CI must run ${what}, but: ${reason}`);
  process.stderr.write(`skipping: ${reason}\n`);
  return { skip: true, reason };
}
