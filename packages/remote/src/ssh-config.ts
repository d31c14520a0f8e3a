import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { hostFieldMatches } from './ssh-known-hosts.js';
import { readRegularFile } from '@labctl/core/files';

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

/** Options for `alias` from an ssh config file; a missing file means no options. */
export async function loadSshConfig(alias: string, file: string = defaultSshConfigFile()): Promise<SshHostConfig> {
  const text = await readRegularFile(file, 'ssh config file', {
    maxBytes: 16 * 1024 * 1024,
    missingOk: true,
    code: 'SSH_CONFIG_UNREADABLE',
  });
  return text === undefined ? { identityFiles: [] } : resolveSshConfig(text, alias);
}
