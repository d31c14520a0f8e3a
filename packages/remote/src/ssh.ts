import { homedir } from 'node:os';
import type { Duplex } from 'node:stream';
import { join } from 'node:path';
import { Semaphore, sleep } from '@labctl/core/concurrency';
import { LabctlError, UsageError } from '@labctl/core/errors';
import { readRegularFile } from '@labctl/core/files';
import ssh2, {
  type AnyAuthMethod,
  type AuthenticationType,
  type Client as ClientType,
  type ClientChannel,
  type ConnectConfig,
} from 'ssh2';
import { loadSshConfig } from './ssh-config.js';
import {
  appendKnownHost,
  entriesForHost,
  fingerprint,
  type HostKeyVerdict,
  keyBlobType,
  knownHostName,
  readKnownHosts,
  sshHostKeyAlgorithms,
  verifyHostKey,
} from './ssh-known-hosts.js';

// ssh2 is CommonJS: Node's ESM loader gives only its default export (vitest hides this).
const { Client, utils } = ssh2;

/**
 * labctl's SSH client (ssh2): pinned host keys from OpenSSH known_hosts, key/agent/password auth,
 * ~/.ssh/config basics, at most HANDSHAKES_PER_HOST concurrent handshakes per host (OpenSSH's
 * MaxStartups 10 drops the rest) and at most CHANNELS_PER_CONNECTION commands in flight per
 * connection (below OpenSSH's MaxSessions 10). exec() never throws for a non-zero exit: the caller judges the code.
 */
export const HANDSHAKES_PER_HOST = 10;
export const CHANNELS_PER_CONNECTION = 8;

export interface SshTarget {
  host: string;
  user?: string;
  port?: number;
}

/**
 * `strict` (default): only keys already in known_hosts. `accept-new`: an unknown host's key is
 * recorded in `knownHostsFile` (like OpenSSH's StrictHostKeyChecking=accept-new); a changed key is
 * refused under both.
 */
export type HostKeyPolicy = 'strict' | 'accept-new';

export interface SshConnectOptions {
  hostKeyPolicy?: HostKeyPolicy;
  /** Default: UserKnownHostsFile from ssh config, else ~/.ssh/known_hosts. */
  knownHostsFile?: string;
  /** Private key files to try, in order. Default: IdentityFile from ssh config, else ~/.ssh/id_{ed25519,ecdsa,rsa}. */
  identityFiles?: string[];
  /** ssh-agent socket; default $SSH_AUTH_SOCK. `false` disables the agent. */
  agent?: string | false;
  /** Asked only when keys failed and the server accepts passwords. Never stored. */
  password?: () => Promise<string | undefined> | string | undefined;
  /** ssh config file; `false` ignores it. Default ~/.ssh/config. */
  sshConfigFile?: string | false;
  readyTimeoutMs?: number;
  /** 0 disables keepalives. */
  keepaliveIntervalMs?: number;
  signal?: AbortSignal;
  /**
   * Jump hosts as `ssh -J` takes them (`admin@bastion`, `a@j1,b@j2:2222`); default the ProxyJump of
   * ssh config; `false` goes direct. Each hop is a full SSH connection of its own, its host key
   * checked strictly against the user's known_hosts (as OpenSSH checks jump hosts).
   */
  proxyJump?: string | false;
  /** Read /etc/ssh/ssh_known_hosts (ssh config's GlobalKnownHostsFile) too; default true. */
  globalKnownHosts?: boolean;
  /** Internal: the stream to run SSH over (a channel through the previous jump host). */
  via?: (host: string, port: number) => Promise<Duplex>;
}

export interface ExecOptions {
  /** Sent on the command's stdin, then EOF. Without it stdin is closed at once. */
  stdin?: string | Buffer;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** null when the command was killed by a signal. */
  code: number | null;
  /** e.g. `SIGTERM`, or null. */
  signal: string | null;
}

export interface ResolvedTarget {
  /** What the user typed as host (ssh config alias). */
  alias: string;
  host: string;
  port: number;
  user: string;
}

export class SshConnectError extends LabctlError {}
export class SshAuthError extends LabctlError {}
export class SshHostKeyError extends LabctlError {}
export class SshTimeoutError extends LabctlError {}

/** `user@host`, `host:2222`, `user@[::1]:2222`. */
export function parseTarget(spec: string): SshTarget {
  const match = /^(?:([^@\s]+)@)?(\[[^\]]+\]|[^:@\s[\]]+)(?::(\d+))?$/.exec(spec.trim());
  if (!match) {
    throw new UsageError('SSH_TARGET', `not an SSH target: "${spec}"`, {
      hint: 'Write it as user@host or user@host:port (IPv6: user@[::1]:2222).',
    });
  }
  const [, user, rawHost = '', rawPort] = match;
  const host = rawHost.startsWith('[') ? rawHost.slice(1, -1) : rawHost;
  const port = rawPort === undefined ? undefined : Number(rawPort);
  if (port !== undefined && (port < 1 || port > 65535))
    throw new UsageError('SSH_TARGET', `port out of range in "${spec}"`);
  return { host, ...(user ? { user } : {}), ...(port !== undefined ? { port } : {}) };
}

export function formatTarget(target: ResolvedTarget): string {
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  return `${target.user}@${host}${target.port === 22 ? '' : `:${target.port}`}`;
}

/** Quote one word for a POSIX shell. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replaceAll("'", `'"'"'`)}'`;
}

const handshakeLimits = new Map<string, Semaphore>();
function handshakeLimit(host: string, port: number): Semaphore {
  const key = knownHostName(host, port);
  let limit = handshakeLimits.get(key);
  if (!limit) {
    limit = new Semaphore(HANDSHAKES_PER_HOST);
    handshakeLimits.set(key, limit);
  }
  return limit;
}

async function readableKeys(files: string[]): Promise<Array<{ file: string; key: Buffer }>> {
  const keys: Array<{ file: string; key: Buffer }> = [];
  for (const file of files) {
    try {
      const text = await readRegularFile(file, 'SSH key file', {
        maxBytes: 1024 * 1024,
        missingOk: true,
        code: 'SSH_KEY_UNREADABLE',
      });
      if (text === undefined) continue;
      const key = Buffer.from(text, 'utf8');
      if (utils.parseKey(key) instanceof Error) continue; // encrypted or not a key: ssh would ask, we skip
      keys.push({ file, key });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return keys;
}

export class SshConnection {
  private readonly channels = new Semaphore(CHANNELS_PER_CONNECTION);
  private closed = false;

  constructor(
    private readonly client: ClientType,
    readonly target: ResolvedTarget,
    /** The host key this connection was verified with; `recorded` when accept-new just added it. */
    readonly hostKey: { type: string; fingerprint: string; recorded: boolean },
  ) {
    client.on('close', () => {
      this.closed = true;
    });
    // A reset after the handshake surfaces on the pending exec (its channel closes); without a
    // listener Node would turn it into an uncaught exception.
    client.on('error', (error: Error) => {
      this.lastError = error;
    });
  }

  /** The last connection-level error (a reset, a keepalive timeout), for diagnostics. */
  lastError: Error | undefined;

  /** Turn Nagle off (on by default here): without it every exec pays ~40 ms of delayed ACK. */
  setNoDelay(noDelay = true): void {
    this.client.setNoDelay(noDelay);
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.channels.run(() => this.execNow(command, options));
      } catch (error) {
        // sshd frees a session slot a moment after the channel closes on our side: a refused
        // channel open right after a close is retried, not reported.
        if (!(error instanceof SshConnectError && error.code === 'SSH_CHANNEL_REFUSED') || attempt >= 6) throw error;
        await sleep(25 * attempt, options.signal);
      }
    }
  }

  private execNow(command: string, options: ExecOptions): Promise<ExecResult> {
    const where = formatTarget(this.target);
    return new Promise<ExecResult>((resolve, reject) => {
      if (this.closed) return reject(new SshConnectError('SSH_CLOSED', `the SSH connection to ${where} is closed`));
      if (options.signal?.aborted) return reject(options.signal.reason);
      this.client.exec(command, (err, stream: ClientChannel) => {
        if (err) {
          const code = /channel open failure/i.test(err.message) ? 'SSH_CHANNEL_REFUSED' : 'SSH_EXEC';
          return reject(
            new SshConnectError(code, `cannot start a command on ${where}: ${err.message}`, { cause: err }),
          );
        }
        const stdout: Buffer[] = [];
        const stderr: Buffer[] = [];
        let code: number | null = null;
        let signal: string | null = null;
        let settled = false;
        const finish = (error?: unknown) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', onAbort);
          if (error !== undefined) reject(error);
          else
            resolve({
              stdout: Buffer.concat(stdout).toString('utf8'),
              stderr: Buffer.concat(stderr).toString('utf8'),
              code,
              signal,
            });
        };
        const stop = (error: unknown) => {
          try {
            stream.signal('KILL');
          } catch {
            // the channel may already be gone
          }
          stream.close();
          finish(error);
        };
        const timer =
          options.timeoutMs === undefined
            ? undefined
            : setTimeout(
                () =>
                  stop(
                    new SshTimeoutError(
                      'SSH_EXEC_TIMEOUT',
                      `command on ${where} did not finish within ${options.timeoutMs} ms: ${command}`,
                      {
                        details: { stderr: Buffer.concat(stderr).toString('utf8').slice(-2000) },
                      },
                    ),
                  ),
                options.timeoutMs,
              );
        const onAbort = () => stop(options.signal?.reason ?? new Error('aborted'));
        options.signal?.addEventListener('abort', onAbort, { once: true });
        stream.on('data', (chunk: Buffer) => stdout.push(chunk));
        stream.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
        stream.on('exit', (exitCode: number | null, exitSignal?: string) => {
          code = typeof exitCode === 'number' ? exitCode : null;
          signal = exitSignal ?? null;
        });
        stream.on('close', () => finish());
        stream.on('error', (error: Error) =>
          finish(new SshConnectError('SSH_EXEC', `command on ${where} failed: ${error.message}`, { cause: error })),
        );
        if (options.stdin !== undefined) stream.end(options.stdin);
        else stream.end();
      });
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** A TCP connection from this host to `host:port` (what `ssh -W` and ProxyJump use). */
  forwardOut(host: string, port: number): Promise<ClientChannel> {
    const where = formatTarget(this.target);
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new SshConnectError('SSH_CLOSED', `the SSH connection to ${where} is closed`));
      this.client.forwardOut('127.0.0.1', 0, host, port, (error, channel) => {
        if (!error) return resolve(channel);
        reject(
          new SshConnectError(
            'SSH_JUMP_FORWARD',
            `jump host ${where} cannot open a connection to ${host}:${port}: ${error.message}`,
            {
              hint: `Is ${host} up and listening on port ${port}, and does ${where} allow TCP forwarding (AllowTcpForwarding in its sshd_config)?`,
              details: { transient: /connect failed|refused|timed out/i.test(error.message) },
            },
          ),
        );
      });
    });
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.client.once('close', () => resolve());
      this.client.end();
    });
  }
}

/** Resolve user/host/port/identities/known_hosts from the target, options and ssh config. */
export async function resolveConnectSettings(target: string | SshTarget, options: SshConnectOptions = {}) {
  const parsed = typeof target === 'string' ? parseTarget(target) : target;
  const config =
    options.sshConfigFile === false ? { identityFiles: [] } : await loadSshConfig(parsed.host, options.sshConfigFile);
  const resolved: ResolvedTarget = {
    alias: parsed.host,
    host: config.hostName ?? parsed.host,
    port: parsed.port ?? config.port ?? 22,
    user: parsed.user ?? config.user ?? process.env.USER ?? 'root',
  };
  const sshDir = join(homedir(), '.ssh');
  const identityFiles =
    options.identityFiles ??
    (config.identityFiles.length > 0
      ? config.identityFiles
      : ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((name) => join(sshDir, name)));
  const knownHostsFile = options.knownHostsFile ?? config.userKnownHostsFile ?? join(sshDir, 'known_hosts');
  // The user's other known_hosts files and the system's are read too, never written.
  const alsoRead =
    options.globalKnownHosts === false
      ? []
      : [
          ...(options.knownHostsFile ? [] : (config.userKnownHostsFiles ?? []).slice(1)),
          ...(config.globalKnownHostsFiles ?? ['/etc/ssh/ssh_known_hosts', '/etc/ssh/ssh_known_hosts2']),
        ].filter((file) => file !== knownHostsFile);
  const proxyJump = options.proxyJump === false ? undefined : (options.proxyJump ?? config.proxyJump);
  return {
    target: resolved,
    identityFiles,
    knownHostsFile,
    alsoRead,
    hashKnownHosts: config.hashKnownHosts ?? false,
    ...(proxyJump && !options.via ? { proxyJump } : {}),
  };
}

/**
 * Connect and authenticate. The host key must be in known_hosts (or be new under `accept-new`);
 * a changed or revoked key is always refused. Transient handshake drops are retried twice.
 */
export async function connect(target: string | SshTarget, options: SshConnectOptions = {}): Promise<SshConnection> {
  const settings = await resolveConnectSettings(target, options);
  const { host, port } = settings.target;
  const limit = handshakeLimit(host, port);
  for (let attempt = 1; ; attempt++) {
    try {
      return await limit.run(() => connectOnce(settings, options));
    } catch (error) {
      const transient = error instanceof SshConnectError && error.details?.transient === true;
      if (!transient || attempt >= 3 || options.signal?.aborted) throw error;
      await sleep(150 * attempt, options.signal);
    }
  }
}

/** Connect, run `fn`, always close. */
export async function withSsh<T>(
  target: string | SshTarget,
  options: SshConnectOptions,
  fn: (ssh: SshConnection) => Promise<T>,
): Promise<T> {
  const ssh = await connect(target, options);
  try {
    return await fn(ssh);
  } finally {
    await ssh.close();
  }
}

type Settings = Awaited<ReturnType<typeof resolveConnectSettings>>;

async function connectOnce(settings: Settings, options: SshConnectOptions): Promise<SshConnection> {
  const { target, knownHostsFile } = settings;
  const where = formatTarget(target);
  const policy = options.hostKeyPolicy ?? 'strict';
  const known = (await Promise.all([knownHostsFile, ...settings.alsoRead].map((file) => readKnownHosts(file)))).flat();
  const keys = await readableKeys(settings.identityFiles);
  const agent = options.agent === false ? undefined : (options.agent ?? process.env.SSH_AUTH_SOCK);

  let verdict: HostKeyVerdict | undefined;
  let presented: Buffer | undefined;
  const methods: AnyAuthMethod[] = [
    ...(agent ? [{ type: 'agent' as const, username: target.user, agent }] : []),
    ...keys.map(({ key }) => ({ type: 'publickey' as const, username: target.user, key })),
  ];
  const tried: string[] = [...(agent ? ['ssh-agent'] : []), ...keys.map(({ file }) => file)];
  let passwordAsked = false;
  const authHandler = (
    _left: AuthenticationType[] | null,
    _partial: boolean | null,
    next: (m: AnyAuthMethod | false) => void,
  ) => {
    const method = methods.shift();
    if (method) return next(method);
    if (!options.password || passwordAsked) return next(false);
    passwordAsked = true;
    Promise.resolve(options.password()).then(
      (password) => {
        if (password === undefined) return next(false);
        tried.push('password');
        next({ type: 'password', username: target.user, password });
      },
      () => next(false),
    );
  };

  const client = new Client();
  const config: ConnectConfig = {
    host: target.host,
    port: target.port,
    username: target.user,
    readyTimeout: options.readyTimeoutMs ?? 20_000,
    keepaliveInterval: options.keepaliveIntervalMs ?? 15_000,
    authHandler: authHandler as ConnectConfig['authHandler'],
    hostVerifier: (key: Buffer) => {
      presented = key;
      verdict = verifyHostKey(known, target.host, target.port, key);
      return verdict.kind === 'match' || (verdict.kind === 'unknown' && policy === 'accept-new');
    },
  };
  const algorithms = sshHostKeyAlgorithms(entriesForHost(known, target.host, target.port));
  if (algorithms) config.algorithms = { serverHostKey: algorithms as never };
  // Through jump hosts: the TCP connection is a channel of the last hop; SSH runs end to end.
  const via =
    options.via ??
    (settings.proxyJump
      ? (host: string, port: number) => throughJumpHosts(settings.proxyJump!, host, port, options)
      : undefined);
  if (via) config.sock = (await via(target.host, target.port)) as ConnectConfig['sock'];

  await new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      client.end();
      reject(options.signal?.reason ?? new Error('aborted'));
    };
    if (options.signal?.aborted) return onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    client.once('ready', () => {
      options.signal?.removeEventListener('abort', onAbort);
      resolve();
    });
    client.once('error', (error: Error & { level?: string; code?: string }) => {
      options.signal?.removeEventListener('abort', onAbort);
      client.on('error', () => {}); // later errors of a failed connection have nobody to tell
      client.end();
      reject(
        describeConnectError(error, {
          where,
          knownName: knownHostName(target.host, target.port),
          knownHostsFile,
          verdict,
          presented,
          tried,
          readyTimeoutMs: config.readyTimeout ?? 0,
        }),
      );
    });
    client.connect(config);
  });

  const key = presented as Buffer;
  let recorded = false;
  if (verdict?.kind === 'unknown') {
    await appendKnownHost(knownHostsFile, target.host, target.port, key, { hashed: settings.hashKnownHosts });
    recorded = true;
  }
  const connection = new SshConnection(client, target, {
    type: keyBlobType(key),
    fingerprint: fingerprint(key),
    recorded,
  });
  connection.setNoDelay(true);
  return connection;
}

function describeConnectError(
  error: Error & { level?: string; code?: string },
  context: {
    where: string;
    knownName: string;
    knownHostsFile: string;
    verdict: HostKeyVerdict | undefined;
    presented: Buffer | undefined;
    tried: string[];
    readyTimeoutMs: number;
  },
): LabctlError {
  const { where, knownHostsFile, verdict, presented } = context;
  const presentedDesc = presented ? `${keyBlobType(presented)} ${fingerprint(presented)}` : 'unknown';
  if (verdict?.kind === 'changed') {
    const lines = verdict.entries.map((entry) => `${entry.file}:${entry.line}`).join(', ');
    return new SshHostKeyError(
      'SSH_HOST_KEY_CHANGED',
      `host key of ${where} has CHANGED (now ${presentedDesc}); refusing to connect`,
      {
        hint: `If the machine was really reinstalled, remove the old entry (${lines}) with: ssh-keygen -R '${context.knownName}' -f ${knownHostsFile}, then verify the new key out of band.`,
        details: { knownHostsFile, entries: lines, presented: presentedDesc },
      },
    );
  }
  if (verdict?.kind === 'revoked') {
    return new SshHostKeyError(
      'SSH_HOST_KEY_REVOKED',
      `host key of ${where} (${presentedDesc}) is marked @revoked in ${verdict.entry.file}:${verdict.entry.line}`,
    );
  }
  if (verdict?.kind === 'unknown') {
    return new SshHostKeyError(
      'SSH_HOST_KEY_UNKNOWN',
      `host key of ${where} is not in ${knownHostsFile} (it offered ${presentedDesc})`,
      {
        hint: 'Check the fingerprint out of band, then add it (ssh-keyscan, or connect once with `ssh`), or let labctl record it with --accept-new-host-key.',
        details: { knownHostsFile, presented: presentedDesc },
      },
    );
  }
  if (error.level === 'client-authentication') {
    return new SshAuthError(
      'SSH_AUTH_FAILED',
      `authentication to ${where} failed (tried: ${context.tried.join(', ') || 'nothing'})`,
      {
        hint: 'Pass --identity FILE, load the key into ssh-agent, or check that the user exists and the key is in its authorized_keys. On Windows OpenSSH, a user in the Administrators group is authorized by C:\\ProgramData\\ssh\\administrators_authorized_keys (owned by Administrators and SYSTEM only), not by ~\\.ssh\\authorized_keys.',
      },
    );
  }
  if (error.level === 'client-timeout') {
    return new SshConnectError(
      'SSH_CONNECT_TIMEOUT',
      `no SSH handshake with ${where} within ${context.readyTimeoutMs} ms`,
      {
        hint: 'Is the machine up and sshd listening on that port?',
      },
    );
  }
  if (/no matching host key/i.test(error.message)) {
    return new SshHostKeyError(
      'SSH_HOST_KEY_CHANGED',
      `${where} offers none of the host key types recorded for it in ${knownHostsFile}`,
      {
        hint: 'The host was probably reinstalled; verify its new key out of band and replace the old entry.',
      },
    );
  }
  const transient = error.code === 'ECONNRESET' || /before handshake/i.test(error.message);
  return new SshConnectError('SSH_CONNECT_FAILED', `cannot connect to ${where}: ${error.message}`, {
    cause: error,
    details: { transient },
    ...(error.code === 'ECONNREFUSED'
      ? { hint: 'Nothing listens on that port: check the address, the port and that sshd runs.' }
      : {}),
  });
}

/**
 * Jump hosts shared by every connection of this process that goes through the same hops (a create
 * probes many VMs behind one bastion): one SSH connection per hop, each verified strictly against
 * the user's known_hosts, closed a moment after the last channel through them closes.
 */
const JUMP_IDLE_MS = 1_500;
interface JumpChain {
  hops: Promise<SshConnection[]>;
  channels: number;
  idle?: NodeJS.Timeout;
}
const jumpChains = new Map<string, JumpChain>();

export async function throughJumpHosts(
  spec: string,
  host: string,
  port: number,
  options: Pick<SshConnectOptions, 'sshConfigFile' | 'agent' | 'signal' | 'readyTimeoutMs'> = {},
): Promise<ClientChannel> {
  const key = `${spec}\0${options.sshConfigFile ?? ''}`;
  let chain = jumpChains.get(key);
  if (chain && (await chain.hops.then((hops) => hops.some((hop) => hop.isClosed)).catch(() => true))) {
    jumpChains.delete(key);
    chain = undefined;
  }
  if (!chain) {
    chain = { hops: openJumpHosts(spec, options), channels: 0 };
    jumpChains.set(key, chain);
    chain.hops.catch(() => jumpChains.delete(key));
  }
  const entry = chain;
  clearTimeout(entry.idle);
  const hops = await entry.hops;
  const channel = await hops.at(-1)!.forwardOut(host, port);
  entry.channels++;
  channel.once('close', () => {
    entry.channels--;
    if (entry.channels > 0) return;
    clearTimeout(entry.idle);
    entry.idle = setTimeout(() => {
      if (entry.channels > 0 || jumpChains.get(key) !== entry) return;
      jumpChains.delete(key);
      for (const hop of [...hops].reverse()) void hop.close();
    }, JUMP_IDLE_MS);
  });
  return channel;
}

/** Closes every jump host connection now (they also close themselves when idle). */
export async function closeJumpHosts(): Promise<void> {
  const chains = [...jumpChains.values()];
  jumpChains.clear();
  for (const chain of chains) {
    clearTimeout(chain.idle);
    const hops = await chain.hops.catch(() => [] as SshConnection[]);
    for (const hop of [...hops].reverse()) await hop.close();
  }
}

/** Every hop of `a@j1,b@j2:2222` connected in turn, each through the one before. */
async function openJumpHosts(
  spec: string,
  options: Pick<SshConnectOptions, 'sshConfigFile' | 'agent' | 'signal' | 'readyTimeoutMs'>,
): Promise<SshConnection[]> {
  const targets = spec.split(',').map((hop) => parseTarget(hop));
  if (targets.length === 0 || targets.length > 8)
    throw new UsageError('SSH_TARGET', `a jump host list has 1 to 8 hops: "${spec}"`);
  const hops: SshConnection[] = [];
  try {
    for (const target of targets) {
      const previous = hops.at(-1);
      hops.push(
        await connect(target, {
          ...(options.sshConfigFile !== undefined ? { sshConfigFile: options.sshConfigFile } : {}),
          ...(options.agent !== undefined ? { agent: options.agent } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
          ...(options.readyTimeoutMs ? { readyTimeoutMs: options.readyTimeoutMs } : {}),
          hostKeyPolicy: 'strict',
          proxyJump: false,
          ...(previous ? { via: (host: string, port: number) => previous.forwardOut(host, port) } : {}),
        }),
      );
    }
    return hops;
  } catch (error) {
    for (const hop of hops.reverse()) await hop.close();
    throw error;
  }
}
