import { execFile } from 'node:child_process';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { UsageError } from '@labctl/core/errors';
import { hostFieldMatches } from './ssh-known-hosts.js';
import { readRegularFile } from '@labctl/core/files';

const execFileAsync = promisify(execFile);

/**
 * The basics of ~/.ssh/config that a lab user relies on: `Host` blocks (patterns, `!` negation) with
 * HostName, User, Port, IdentityFile and UserKnownHostsFile. As in OpenSSH the first value found
 * wins, except IdentityFile, which accumulates. `Match` blocks are not evaluated (skipped).
 */
export interface SshHostConfig {
  hostName?: string;
  user?: string;
  port?: number;
  identityFiles: string[];
  userKnownHostsFile?: string;
  /** Every UserKnownHostsFile (OpenSSH reads them all; new keys go to the first). */
  userKnownHostsFiles?: string[];
  /** GlobalKnownHostsFile (default /etc/ssh/ssh_known_hosts and ssh_known_hosts2): read, never written. */
  globalKnownHostsFiles?: string[];
  /** ProxyJump: jump hosts as `ssh -J` takes them. */
  proxyJump?: string;
  /** HashKnownHosts: new known_hosts entries are written hashed (`|1|salt|hmac`). */
  hashKnownHosts?: boolean;
  /** Who resolved it: OpenSSH itself (`ssh -G`), or labctl's parser where there is no ssh. */
  resolvedBy?: 'ssh -G' | 'labctl';
}

interface Block {
  patterns: string[] | null; // null: a Match block, never applied
  options: Array<[key: string, value: string]>;
}

function splitArgs(rest: string): string[] {
  const args: string[] = [];
  for (const match of rest.matchAll(/"([^"]*)"|(\S+)/g)) args.push(match[1] ?? match[2] ?? '');
  return args;
}

function parseBlocks(text: string): Block[] {
  const blocks: Block[] = [{ patterns: ['*'], options: [] }];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const match = /^(\S+?)(?:\s*=\s*|\s+)(.*)$/.exec(line);
    if (!match) continue;
    const key = (match[1] ?? '').toLowerCase();
    const args = splitArgs(match[2] ?? '');
    if (key === 'host') blocks.push({ patterns: args, options: [] });
    else if (key === 'match') blocks.push({ patterns: null, options: [] });
    else (blocks.at(-1) as Block).options.push([key, args.join(' ')]);
  }
  return blocks;
}

function expand(value: string, tokens: { host: string; user?: string; port?: number }): string {
  const home = homedir();
  const expanded = value.replace(/%([%hrpud])/g, (_, token: string) => {
    switch (token) {
      case 'h':
        return tokens.host;
      case 'r':
        return tokens.user ?? userInfo().username;
      case 'p':
        return String(tokens.port ?? 22);
      case 'u':
        return userInfo().username;
      case 'd':
        return home;
      default:
        return '%';
    }
  });
  return expanded.startsWith('~/') ? join(home, expanded.slice(2)) : expanded;
}

/** Resolve the options that apply to `alias` (what the user typed as the host). */
export function resolveSshConfig(text: string, alias: string): SshHostConfig {
  const found: Record<string, string> = {};
  const identityFiles: string[] = [];
  for (const block of parseBlocks(text)) {
    if (!block.patterns || !hostFieldMatches(block.patterns.join(','), alias)) continue;
    for (const [key, value] of block.options) {
      if (key === 'identityfile') identityFiles.push(value);
      else if (!(key in found)) found[key] = value;
    }
  }
  const hostName = found.hostname ? expand(found.hostname, { host: alias }) : undefined;
  const port = found.port ? Number(found.port) : undefined;
  const host = hostName ?? alias;
  const tokens = { host, user: found.user, port };
  return {
    ...(hostName ? { hostName } : {}),
    ...(found.user ? { user: found.user } : {}),
    ...(port && Number.isInteger(port) ? { port } : {}),
    identityFiles: identityFiles.map((file) => expand(file, tokens)),
    ...(found.userknownhostsfile
      ? { userKnownHostsFile: expand(splitArgs(found.userknownhostsfile)[0] ?? '', tokens) }
      : {}),
  };
}

export function defaultSshConfigFile(): string {
  return join(homedir(), '.ssh', 'config');
}

/**
 * Options for `alias` as the user's OpenSSH resolves them: `ssh -G` (Include, Match, ProxyJump,
 * %-tokens, /etc/ssh/ssh_config and every default, exactly as `ssh` would use them); labctl's own
 * parser only where no `ssh` can be run. `file`: a config to read instead of ~/.ssh/config (and,
 * as with `ssh -F`, instead of /etc/ssh/ssh_config); default `$LABCTL_SSH_CONFIG`, labctl's `-F`.
 */
export async function loadSshConfig(
  alias: string,
  file: string | undefined = process.env.LABCTL_SSH_CONFIG || undefined,
): Promise<SshHostConfig> {
  // One `ssh -G` per host and config for the process: a create connects to a host many times.
  const key = `${file ?? ''}\0${alias}`;
  let pending = resolved.get(key);
  if (!pending) {
    pending = opensshConfig(alias, file);
    resolved.set(key, pending);
    pending.catch(() => resolved.delete(key));
  }
  const viaOpenSsh = await pending;
  if (viaOpenSsh) return viaOpenSsh;
  const text = await readRegularFile(file ?? defaultSshConfigFile(), 'ssh config file', {
    maxBytes: 16 * 1024 * 1024,
    missingOk: true,
    code: 'SSH_CONFIG_UNREADABLE',
  });
  return { ...(text === undefined ? { identityFiles: [] } : resolveSshConfig(text, alias)), resolvedBy: 'labctl' };
}

const resolved = new Map<string, Promise<SshHostConfig | undefined>>();
const SSH_G_TIMEOUT_MS = 10_000;
/** A host name ssh could take for an option (`-oProxyCommand=...`): never passed to ssh -G. */
const SAFE_ALIAS = /^[A-Za-z0-9_.:%[\]-]+$/;

/** `ssh -G` output ("key value" per line) as settings; undefined when ssh cannot be run. */
export async function opensshConfig(alias: string, file?: string): Promise<SshHostConfig | undefined> {
  if (process.env.LABCTL_SSH_G === '0' || !SAFE_ALIAS.test(alias) || alias.startsWith('-')) return undefined;
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync('ssh', [...(file ? ['-F', file] : []), '-G', '--', alias], {
      timeout: SSH_G_TIMEOUT_MS,
      maxBuffer: 4 * 1024 * 1024,
    }));
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') return undefined;
    throw new UsageError(
      'SSH_CONFIG_UNREADABLE',
      `OpenSSH cannot resolve the settings for ${alias}${file ? ` from ${file}` : ''}: ${(e.stderr ?? e.message).trim().split('\n')[0]}`,
      { hint: `ssh -G ${alias} shows the same error: fix the ssh_config it names.` },
    );
  }
  const single = new Map<string, string>();
  const multi = new Map<string, string[]>();
  for (const line of stdout.split('\n')) {
    const at = line.indexOf(' ');
    if (at <= 0) continue;
    const key = line.slice(0, at).toLowerCase();
    const value = line.slice(at + 1);
    if (!single.has(key)) single.set(key, value);
    multi.set(key, [...(multi.get(key) ?? []), value]);
  }
  const home = homedir();
  const tilde = (path: string) => (path === '~' ? home : path.startsWith('~/') ? join(home, path.slice(2)) : path);
  const words = (key: string) => (single.get(key) ?? '').split(/\s+/).filter(Boolean).map(tilde);
  const port = Number(single.get('port'));
  const proxyJump = single.get('proxyjump');
  return {
    ...(single.get('hostname') ? { hostName: single.get('hostname') } : {}),
    ...(single.get('user') ? { user: single.get('user') } : {}),
    ...(Number.isInteger(port) && port > 0 ? { port } : {}),
    identityFiles: (multi.get('identityfile') ?? []).map(tilde),
    ...(words('userknownhostsfile')[0] ? { userKnownHostsFile: words('userknownhostsfile')[0] } : {}),
    userKnownHostsFiles: words('userknownhostsfile'),
    globalKnownHostsFiles: words('globalknownhostsfile'),
    ...(proxyJump && proxyJump !== 'none' ? { proxyJump } : {}),
    hashKnownHosts: single.get('hashknownhosts') === 'yes',
    resolvedBy: 'ssh -G',
  };
}
