import { createHash, createHmac, randomBytes } from 'node:crypto';
import { appendFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { UsageError } from '@labctl/core/errors';
import { readRegularFile } from '@labctl/core/files';

/**
 * OpenSSH known_hosts, read the way `ssh` reads it: plain and hashed (`|1|salt|hmac`) host fields,
 * `[host]:port` for ports other than 22, comma lists, `*`/`?` wildcards, `!` negation, and the
 * `@revoked` marker. `@cert-authority` lines are ignored (labctl does not do host certificates).
 */
export interface KnownHostEntry {
  file: string;
  line: number;
  marker: '@revoked' | '@cert-authority' | null;
  hosts: string;
  keyType: string;
  keyBase64: string;
}

export type HostKeyVerdict =
  | { kind: 'match'; entry: KnownHostEntry }
  | { kind: 'unknown' }
  | { kind: 'changed'; entries: KnownHostEntry[] }
  | { kind: 'revoked'; entry: KnownHostEntry };

/** The name a host is recorded under: `host` on port 22, `[host]:port` otherwise (as OpenSSH writes it). */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostEntry['marker'] = null;
    if (fields[0] === '@revoked' || fields[0] === '@cert-authority')
      marker = fields.shift() as KnownHostEntry['marker'];
    const [hosts, keyType, keyBase64] = fields;
    if (!hosts || !keyType || !keyBase64) return; // malformed lines are skipped, like ssh does
    entries.push({ file, line: index + 1, marker, hosts, keyType, keyBase64 });
  });
  return entries;
}

export async function readKnownHosts(file: string): Promise<KnownHostEntry[]> {
  const text = await readRegularFile(file, 'known_hosts file', {
    maxBytes: 64 * 1024 * 1024,
    missingOk: true,
    code: 'KNOWN_HOSTS_UNREADABLE',
  });
  return text === undefined ? [] : parseKnownHosts(text, file);
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

function hashedMatches(field: string, name: string): boolean {
  const [, magic, salt, hash] = field.split('|');
  if (magic !== '1' || !salt || !hash) return false;
  const digest = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
  return digest === hash;
}

/** Does a known_hosts host field (`a,b,!c,[d]:2222` or `|1|…`) name this host? A negated match wins. */
export function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|')) return hashedMatches(field, name);
  let matched = false;
  for (const pattern of field.split(',')) {
    const negated = pattern.startsWith('!');
    const glob = negated ? pattern.slice(1) : pattern;
    if (!globToRegExp(glob).test(name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

/** The key type written at the start of an SSH public key blob (`ssh-ed25519`, `ssh-rsa`, …). */
export function keyBlobType(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const length = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + length).toString('latin1');
}

/** OpenSSH's fingerprint format: `SHA256:` + unpadded base64 of the blob's SHA-256. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

export function entriesForHost(entries: readonly KnownHostEntry[], host: string, port: number): KnownHostEntry[] {
  const name = knownHostName(host, port);
  return entries.filter((entry) => entry.marker !== '@cert-authority' && hostFieldMatches(entry.hosts, name));
}

/**
 * Judge a presented host key: a revoked key is refused, the same key is a match, another key of a
 * type the host is known by is a changed key, and a host with no entry of that type is unknown.
 */
export function verifyHostKey(
  entries: readonly KnownHostEntry[],
  host: string,
  port: number,
  blob: Buffer,
): HostKeyVerdict {
  const forHost = entriesForHost(entries, host, port);
  const presented = blob.toString('base64');
  const revoked = entries.find((entry) => entry.marker === '@revoked' && entry.keyBase64 === presented);
  if (revoked) return { kind: 'revoked', entry: revoked };
  const same = forHost.find((entry) => entry.marker === null && entry.keyBase64 === presented);
  if (same) return { kind: 'match', entry: same };
  const type = keyBlobType(blob);
  const sameType = forHost.filter((entry) => entry.marker === null && entry.keyType === type);
  if (sameType.length > 0) return { kind: 'changed', entries: sameType };
  const anyKnown = forHost.filter((entry) => entry.marker === null);
  // Host key algorithms are restricted to the known types (see sshHostKeyAlgorithms), so a host that
  // still presents another type has lost the key it was known by: that is a change, not a new host.
  if (anyKnown.length > 0) return { kind: 'changed', entries: anyKnown };
  return { kind: 'unknown' };
}

const ALGORITHMS_FOR_KEY_TYPE: Record<string, string[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/**
 * Host key algorithms to offer for a known host: only those of its recorded key types, so the server
 * presents a key we can compare (OpenSSH prefers known types the same way). Undefined = no preference.
 */
export function sshHostKeyAlgorithms(entries: readonly KnownHostEntry[]): string[] | undefined {
  const algorithms = new Set<string>();
  for (const entry of entries)
    if (entry.marker === null) for (const a of ALGORITHMS_FOR_KEY_TYPE[entry.keyType] ?? []) algorithms.add(a);
  return algorithms.size > 0 ? [...algorithms] : undefined;
}

/** The hashed form of a known_hosts name (OpenSSH's HashKnownHosts): `|1|base64(salt)|base64(hmac-sha1)`. */
export function hashedHostName(name: string, salt: Buffer = randomBytes(20)): string {
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

/**
 * Record a host key (the `accept-new` policy): `[host]:port type base64`, hashed when the user's
 * ssh config says HashKnownHosts yes; file 0600, directory 0700.
 */
export async function appendKnownHost(
  file: string,
  host: string,
  port: number,
  blob: Buffer,
  options: { hashed?: boolean } = {},
): Promise<void> {
  // A host field is a comma list of patterns (*, ?, !negation) ended by a space: only a plain name or
  // address may go in, or the key would be pinned for other hosts too.
  if (!/^[A-Za-z0-9._:%-]+$/.test(host)) {
    throw new UsageError(
      'KNOWN_HOSTS_BAD_HOST',
      `refusing to write ${JSON.stringify(host.slice(0, 80))} into known_hosts: not a host name or address`,
    );
  }
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const name = options.hashed ? hashedHostName(knownHostName(host, port)) : knownHostName(host, port);
  const line = `${name} ${keyBlobType(blob)} ${blob.toString('base64')}\n`;
  let prefix = '';
  const current = await readRegularFile(file, 'known_hosts file', {
    maxBytes: 64 * 1024 * 1024,
    missingOk: true,
    code: 'KNOWN_HOSTS_UNREADABLE',
  });
  if (current !== undefined && current.length > 0 && !current.endsWith('\n')) prefix = '\n';
  await appendFile(file, prefix + line, { mode: 0o600 });
}
