import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasCommand } from '@labctl/core/testing/testbed';
import { describe, expect, it } from 'vitest';
import { parseTarget, shellQuote } from './ssh.js';
import { resolveSshConfig } from './ssh-config.js';
import {
  fingerprint,
  hostFieldMatches,
  parseKnownHosts,
  sshHostKeyAlgorithms,
  verifyHostKey,
} from './ssh-known-hosts.js';

function blob(type: string, body: string): Buffer {
  const t = Buffer.from(type);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(t.length);
  return Buffer.concat([len, t, Buffer.from(body)]);
}

describe('SSH targets', () => {
  it('parses user@host[:port] and bracketed IPv6, and refuses junk as bad input', () => {
    expect(parseTarget('root@10.0.0.5')).toEqual({ user: 'root', host: '10.0.0.5' });
    expect(parseTarget('admin@tmpl:2222')).toEqual({ user: 'admin', host: 'tmpl', port: 2222 });
    expect(parseTarget('u@[::1]:22')).toEqual({ user: 'u', host: '::1', port: 22 });
    expect(parseTarget('lab-h2')).toEqual({ host: 'lab-h2' });
    expect(() => parseTarget('a@b@c')).toThrow(expect.objectContaining({ code: 'SSH_TARGET', exitCode: 2 }));
    expect(() => parseTarget('h:70000')).toThrow(/port out of range/);
  });

  it('quotes words for a POSIX shell', () => {
    expect(shellQuote('plain/path-1.txt')).toBe('plain/path-1.txt');
    expect(shellQuote("it's $HOME")).toBe(`'it'"'"'s $HOME'`);
    expect(execFileSync('sh', ['-c', `printf %s ${shellQuote('a b\'c"$(x)')}`]).toString()).toBe('a b\'c"$(x)');
  });
});

describe('known_hosts', () => {
  const ed = blob('ssh-ed25519', 'key-one');
  const edOther = blob('ssh-ed25519', 'key-two');
  const rsa = blob('ssh-rsa', 'rsa-key');
  const b64 = (b: Buffer) => b.toString('base64');

  it('matches plain, [host]:port, wildcard and negated patterns like OpenSSH', () => {
    expect(hostFieldMatches('h1,10.0.0.5', '10.0.0.5')).toBe(true);
    expect(hostFieldMatches('[10.0.0.5]:2222', '[10.0.0.5]:2222')).toBe(true);
    expect(hostFieldMatches('10.0.0.5', '[10.0.0.5]:2222')).toBe(false);
    expect(hostFieldMatches('*.lab.example,!bad.lab.example', 'vm1.lab.example')).toBe(true);
    expect(hostFieldMatches('*.lab.example,!bad.lab.example', 'bad.lab.example')).toBe(false);
    expect(hostFieldMatches('vm?', 'vm7')).toBe(true);
  });

  it('says match, changed, unknown or revoked for a presented key', () => {
    const entries = parseKnownHosts(
      [
        `# comment`,
        `[h]:2222 ssh-ed25519 ${b64(ed)}`,
        `other ssh-rsa ${b64(rsa)}`,
        `@revoked * ssh-ed25519 ${b64(blob('ssh-ed25519', 'stolen'))}`,
        'junk',
      ].join('\n'),
      'kh',
    );
    expect(verifyHostKey(entries, 'h', 2222, ed)).toMatchObject({ kind: 'match', entry: { line: 2 } });
    expect(verifyHostKey(entries, 'h', 2222, edOther)).toMatchObject({
      kind: 'changed',
      entries: [{ file: 'kh', line: 2 }],
    });
    expect(verifyHostKey(entries, 'h', 22, ed)).toEqual({ kind: 'unknown' }); // port 22 is another name
    expect(verifyHostKey(entries, 'other', 22, ed)).toMatchObject({ kind: 'changed' }); // known by rsa only
    expect(verifyHostKey(entries, 'h', 2222, blob('ssh-ed25519', 'stolen'))).toMatchObject({ kind: 'revoked' });
    expect(sshHostKeyAlgorithms(entries.slice(0, 2))).toEqual([
      'ssh-ed25519',
      'rsa-sha2-512',
      'rsa-sha2-256',
      'ssh-rsa',
    ]);
    expect(fingerprint(ed)).toMatch(/^SHA256:[A-Za-z0-9+/]+$/);
  });

  it.skipIf(!hasCommand('ssh-keygen'))('reads entries hashed by ssh-keygen -H', () => {
    const dir = mkdtempSync(join(tmpdir(), 'labctl-remote-kh-'));
    try {
      const file = join(dir, 'known_hosts');
      writeFileSync(file, `[10.1.2.3]:2200 ssh-ed25519 ${b64(ed)}\n`);
      execFileSync('ssh-keygen', ['-q', '-H', '-f', file]);
      const entries = parseKnownHosts(readFileSync(file, 'utf8'), file);
      expect(entries[0]?.hosts).toMatch(/^\|1\|/);
      expect(verifyHostKey(entries, '10.1.2.3', 2200, ed).kind).toBe('match');
      expect(verifyHostKey(entries, '10.1.2.4', 2200, ed).kind).toBe('unknown');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('ssh config', () => {
  const config = [
    'Host tmpl tmpl-*',
    '  HostName 10.0.0.5',
    '  User root',
    '  IdentityFile ~/.ssh/lab_%r',
    'Host *.lab !bad.lab',
    '  Port 2222',
    'Match host foo',
    '  User ignored',
    'Host *',
    '  User fallback',
    '  Port 22',
    '  IdentityFile /keys/any',
    '  UserKnownHostsFile ~/.ssh/lab_known_hosts',
  ].join('\n');

  it('takes the first value per option, accumulates IdentityFile, expands ~ and %r', () => {
    const resolved = resolveSshConfig(config, 'tmpl');
    expect(resolved).toMatchObject({ hostName: '10.0.0.5', user: 'root', port: 22 });
    expect(resolved.identityFiles).toHaveLength(2);
    expect(resolved.identityFiles[0]).toMatch(/\/\.ssh\/lab_root$/);
    expect(resolved.identityFiles[1]).toBe('/keys/any');
    expect(resolved.userKnownHostsFile).toMatch(/\/\.ssh\/lab_known_hosts$/);
  });

  it('applies negated patterns and never a Match block', () => {
    expect(resolveSshConfig(config, 'vm1.lab')).toMatchObject({ port: 2222, user: 'fallback' });
    expect(resolveSshConfig(config, 'bad.lab')).toMatchObject({ port: 22, user: 'fallback' });
    expect(resolveSshConfig(config, 'foo').user).toBe('fallback');
  });
});
