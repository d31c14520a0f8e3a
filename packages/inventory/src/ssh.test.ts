import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { describe, expect, it } from 'vitest';
import { shellWord, sshArgv, sshConfigText, type SshTarget } from './ssh.js';

/**
 * `labctl ssh` and `labctl ssh-config` checked against OpenSSH's own reading of them (`ssh -G`
 * prints the settings ssh would use, contacting nothing): paths with spaces and `%`, users,
 * ports, the pinned-keys options.
 */
const gate = requireTestbed('ssh -G (OpenSSH client)', { commands: ['ssh'] });

function resolved(args: string[]): Record<string, string> {
  const out = execFileSync('ssh', ['-G', ...args], { encoding: 'utf8', env: { ...process.env, HOME: tmpdir() } });
  const settings: Record<string, string> = {};
  for (const line of out.split('\n')) {
    const at = line.indexOf(' ');
    const key = line.slice(0, at);
    // identityfile repeats (defaults, then ours): keep them all.
    if (at > 0)
      settings[key] =
        key in settings && key === 'identityfile'
          ? `${settings[key]}\n${line.slice(at + 1)}`
          : (settings[key] ?? line.slice(at + 1));
  }
  return settings;
}

describe.skipIf(gate.skip)('ssh options as OpenSSH reads them', () => {
  const dir = mkdtempSync(join(tmpdir(), 'labctl ssh %d '));
  const knownHosts = join(dir, 'known_hosts');
  const target: SshTarget = {
    name: 'web-01',
    address: '10.1.2.3',
    port: 2222,
    user: 'admin',
    keyFile: join(dir, 'id key%h'),
  };

  it('labctl ssh: the address, port, user, key and pinned known_hosts, strictly checked under the VM name', () => {
    const argv = sshArgv(target, knownHosts, ['uptime']);
    expect(argv.slice(-2)).toEqual(['10.1.2.3', 'uptime']);
    const settings = resolved(argv.slice(0, -1));
    expect(settings).toMatchObject({
      hostname: '10.1.2.3',
      port: '2222',
      user: 'admin',
      hostkeyalias: 'web-01',
      stricthostkeychecking: 'true',
      identitiesonly: 'yes',
      globalknownhostsfile: '/dev/null',
    });
    // ssh -G shows UserKnownHostsFile expanded (one path, spaces and % intact) and IdentityFile as
    // configured: ssh turns its %% into % when it loads the key.
    expect(settings.userknownhostsfile).toBe(knownHosts);
    expect(settings.identityfile).toBe(target.keyFile!.replaceAll('%', '%%'));
  });

  it('labctl ssh-config: Host blocks that `ssh -F` resolves the same way, one per VM', () => {
    const config = join(dir, 'lab.conf');
    writeFileSync(config, sshConfigText('lab "x"', [target, { name: 'db-01', address: 'fd00::5' }], knownHosts));
    const web = resolved(['-F', config, 'web-01']);
    expect(web).toMatchObject({
      hostname: '10.1.2.3',
      port: '2222',
      user: 'admin',
      hostkeyalias: 'web-01',
      stricthostkeychecking: 'true',
    });
    expect(web.identityfile).toBe(target.keyFile!.replaceAll('%', '%%'));
    expect(web.userknownhostsfile).toBe(knownHosts);
    const db = resolved(['-F', config, 'db-01']);
    expect(db).toMatchObject({ hostname: 'fd00::5', hostkeyalias: 'db-01', port: '22' });
  });

  it('a jump host (ssh.proxyJump) reaches ssh as ProxyJump, on the command line and in ssh-config', () => {
    const jumped = { ...target, proxyJump: 'ops@bastion:2200,admin@inner' };
    expect(resolved(sshArgv(jumped, knownHosts)).proxyjump).toBe('ops@bastion:2200,admin@inner');
    const config = join(dir, 'jump.conf');
    writeFileSync(config, sshConfigText('lab', [jumped], knownHosts));
    expect(resolved(['-F', config, 'web-01'])).toMatchObject({
      proxyjump: 'ops@bastion:2200,admin@inner',
      hostkeyalias: 'web-01',
    });
  });

  it('refuses values ssh would misread (a double quote, a newline), and quotes --print for a shell', () => {
    expect(() => sshArgv({ ...target, keyFile: '/tmp/a"b' }, knownHosts)).toThrow(
      /double quote or a control character/,
    );
    expect(() => sshConfigText('x', [{ ...target, user: 'a\nProxyCommand evil' }], knownHosts)).toThrow(
      /control character/,
    );
    expect(shellWord("it's here")).toBe(`'it'"'"'s here'`);
    expect(shellWord('-o')).toBe('-o');
  });
});
