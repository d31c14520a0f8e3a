import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { usableSocketDir, withSshMux } from './ssh-mux.js';

describe('one SSH connection per libvirt host and run (qemu+ssh:// command= wrapper)', () => {
  const cache = mkdtempSync(join(tmpdir(), 'labctl-mux-'));
  const runtime = mkdtempSync(join(tmpdir(), 'labctl-run-'));
  const env = { XDG_CACHE_HOME: cache, XDG_RUNTIME_DIR: runtime };
  const wrapper = join(cache, 'labctl', 'ssh-mux', `run-${process.pid}`);

  it('adds command= to qemu+ssh URIs only, after any other parameter, and leaves a command= of the user’s alone', () => {
    // A wrapper a killed run left (its process is gone) is removed; a live run's is kept.
    execFileSync('mkdir', ['-p', join(cache, 'labctl', 'ssh-mux')]);
    writeFileSync(join(cache, 'labctl', 'ssh-mux', 'run-999999999'), '#!/bin/sh\n');
    writeFileSync(join(cache, 'labctl', 'ssh-mux', `run-${process.ppid}`), '#!/bin/sh\n');
    expect(withSshMux('qemu+ssh://root@kvm1/system', env)).toBe(
      `qemu+ssh://root@kvm1/system?command=${encodeURIComponent(wrapper)}`,
    );
    expect(existsSync(join(cache, 'labctl', 'ssh-mux', 'run-999999999'))).toBe(false);
    expect(existsSync(join(cache, 'labctl', 'ssh-mux', `run-${process.ppid}`))).toBe(true);
    expect(withSshMux('qemu+ssh://root@kvm1:2222/system?socket=/run/x', env)).toBe(
      `qemu+ssh://root@kvm1:2222/system?socket=/run/x&command=${encodeURIComponent(wrapper)}`,
    );
    for (const uri of [
      'qemu:///system',
      'qemu+libssh://root@kvm1/system',
      'qemu+ssh://kvm1/system?command=/usr/bin/ssh',
    ])
      expect(withSshMux(uri, env)).toBe(uri);
    expect(withSshMux('qemu+ssh://root@kvm1/system', { ...env, LABCTL_SSH_MUX: '0' })).toBe(
      'qemu+ssh://root@kvm1/system',
    );
  });

  it('a socket directory too long for a socket name, or one that needs quoting, is not used (plain ssh then)', () => {
    expect(usableSocketDir('/run/user/1000/labctl-ssh', 4194304)).toBe(true);
    expect(usableSocketDir(`/tmp/${'x'.repeat(36)}`, 4194304)).toBe(true);
    expect(usableSocketDir(`/tmp/${'x'.repeat(37)}`, 4194304)).toBe(false);
    for (const bad of ["/tmp/it's", '/tmp/a$b', '/tmp/a"b', '/tmp/a`b', '/tmp/a\\b'])
      expect(usableSocketDir(bad, 1)).toBe(false);
  });

  it('the wrapper is a private script that runs OpenSSH with ControlMaster, on a socket of this run only', () => {
    expect(statSync(wrapper).mode & 0o777).toBe(0o700);
    expect(statSync(join(runtime, 'labctl-ssh')).mode & 0o777).toBe(0o700);
    expect(readFileSync(wrapper, 'utf8')).toContain(
      `exec ssh -o ControlMaster=auto -o 'ControlPath=${runtime}/labctl-ssh/%C-${process.pid}' -o ControlPersist=5 "$@"`,
    );
    // It passes every argument on as it came (here to `ssh -G`, which prints the options), with
    // an empty environment, as libvirt starts it.
    const resolved = execFileSync(wrapper, ['-G', '-p', '2222', '-l', 'admin', 'kvm1.lab.test'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH },
    });
    expect(resolved).toMatch(/^controlmaster auto$/m);
    expect(resolved).toMatch(/^port 2222$/m);
    expect(resolved).toMatch(/^user admin$/m);
    expect(resolved).toMatch(new RegExp(`^controlpath ${runtime}/labctl-ssh/[0-9a-f]+-${process.pid}$`, 'm'));
  });
});
