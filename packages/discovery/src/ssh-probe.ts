import type { Duplex } from 'node:stream';
import { throughJumpHosts } from '@labctl/remote/ssh';
import { Client } from 'ssh2';

/**
 * Is SSH really there? A full SSH handshake with ssh2 (key exchange, host key signature checked),
 * stopped at authentication: no login is attempted, no credentials are needed. The server's host key
 * comes back as an OpenSSH public-key line ("ssh-ed25519 AAAA..."). When keys are already pinned for
 * the VM, any other key is refused before the handshake completes.
 */
export interface ProbeTarget {
  address: string;
  port: number;
  /** Pinned keys ("ssh-ed25519 AAAA..."); empty = first contact, record what is offered. */
  pinnedKeys: readonly string[];
  /**
   * Also log in (public key) once the host key is verified, to prove the VM accepts the lab's key:
   * the stage users otherwise meet as "Permission denied (publickey)". Nothing is run.
   */
  login?: { user: string; privateKey: Buffer };
  /** Jump hosts (`ssh -J` syntax): the handshake runs through a channel of the last one. */
  proxyJump?: string;
  /** ssh config for the jump hosts (default ~/.ssh/config and /etc/ssh/ssh_config, as ssh reads them). */
  sshConfigFile?: string;
}

export type ProbeResult =
  | {
      ok: true;
      hostKey: string;
      /** With `login`: accepted, or denied (the handshake itself was fine). */
      login?: 'ok' | 'denied';
    }
  | {
      ok: false;
      reason: 'refused' | 'timeout' | 'closed' | 'key-mismatch' | 'error';
      message: string;
      hostKey?: string;
    };

export type SshProbe = (target: ProbeTarget, timeoutMs: number) => Promise<ProbeResult>;

/** Host key algorithms in order of preference: one handshake yields one key, ed25519 when offered. */
const HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
] as const;

/** An OpenSSH public-key line from the raw key blob (its first field is the key type). */
export function openSshKeyLine(blob: Buffer): string {
  const length = blob.readUInt32BE(0);
  const type = blob.subarray(4, 4 + length).toString('ascii');
  return `${type} ${blob.toString('base64')}`;
}

/** Keys compare by type and base64 body; comments are ignored. */
export function sameKey(a: string, b: string): boolean {
  const [typeA, bodyA] = a.trim().split(/\s+/);
  const [typeB, bodyB] = b.trim().split(/\s+/);
  return typeA === typeB && bodyA === bodyB;
}

export const sshHandshakeProbe: SshProbe = async (target, timeoutMs) => {
  if (!target.proxyJump) return handshake(target, timeoutMs);
  let sock: Duplex;
  try {
    sock = await withTimeout(
      throughJumpHosts(target.proxyJump, target.address, target.port, {
        ...(target.sshConfigFile ? { sshConfigFile: target.sshConfigFile } : {}),
        readyTimeoutMs: timeoutMs,
      }),
      timeoutMs,
    );
  } catch (error) {
    const message = (error as Error).message;
    // The jump host answered but the VM's port did not: the same as a refused or silent port.
    if (/cannot open a connection to/.test(message))
      return { ok: false, reason: /refused/i.test(message) ? 'refused' : 'closed', message };
    return { ok: false, reason: 'error', message: `through ${target.proxyJump}: ${message}` };
  }
  return handshake(target, timeoutMs, sock);
};

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

const handshake = (target: ProbeTarget, timeoutMs: number, sock?: Duplex): Promise<ProbeResult> =>
  new Promise((resolve) => {
    const client = new Client();
    let hostKey: string | undefined;
    let settled = false;
    const finish = (result: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.removeAllListeners();
      client.on('error', () => {});
      client.end();
      resolve(result);
    };
    const timer = setTimeout(
      () => finish({ ok: false, reason: 'timeout', message: `no SSH handshake within ${timeoutMs} ms` }),
      timeoutMs,
    );
    const login = target.login;
    client.on('ready', () =>
      finish(
        hostKey
          ? { ok: true, hostKey, ...(login ? { login: 'ok' as const } : {}) }
          : { ok: false, reason: 'error', message: 'no host key seen' },
      ),
    );
    client.on('error', (err: Error & { level?: string; code?: string }) => {
      // Authentication was reached: the handshake (and the host key's signature) is complete.
      if (err.level === 'client-authentication' && hostKey)
        return finish({ ok: true, hostKey, ...(login ? { login: 'denied' as const } : {}) });
      if (err.message.includes('Host denied')) {
        return finish({
          ok: false,
          reason: 'key-mismatch',
          message: `host key ${hostKey ?? '?'} is not the one recorded for this VM`,
          ...(hostKey ? { hostKey } : {}),
        });
      }
      if (err.code === 'ECONNREFUSED')
        return finish({ ok: false, reason: 'refused', message: `connection refused on port ${target.port}` });
      if (err.level === 'client-timeout')
        return finish({ ok: false, reason: 'timeout', message: `no SSH handshake within ${timeoutMs} ms` });
      finish({ ok: false, reason: 'closed', message: err.message });
    });
    client.on('close', () =>
      finish({ ok: false, reason: 'closed', message: 'connection closed before the SSH handshake finished' }),
    );
    client.connect({
      host: target.address,
      port: target.port,
      ...(sock ? { sock: sock as never } : {}),
      username: login?.user ?? 'labctl-probe',
      readyTimeout: timeoutMs,
      ...(login ? { privateKey: login.privateKey } : {}),
      ...(login
        ? {}
        : { authHandler: (_methods, _partial, next) => next(false as unknown as Parameters<typeof next>[0]) }),
      algorithms: { serverHostKey: [...HOST_KEY_ALGORITHMS] },
      hostVerifier: (key: Buffer) => {
        hostKey = openSshKeyLine(key);
        return target.pinnedKeys.length === 0 || target.pinnedKeys.some((pinned) => sameKey(pinned, hostKey!));
      },
    });
  });
