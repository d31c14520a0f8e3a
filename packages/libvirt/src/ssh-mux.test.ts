import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { withSshMux } from './ssh-mux.js';

describe('one SSH connection per libvirt host (qemu+ssh:// command= wrapper)', () => {
  const cache = mkdtempSync(join(tmpdir(), 'labctl-mux-'));
  const env = { XDG_CACHE_HOME: cache };

  it('adds command= to qemu+ssh URIs only, after any other parameter, and leaves a command= of the user’s alone', () => {
    const wrapper = join(cache, 'labctl', 'ssh-mux');
    expect(withSshMux('qemu+ssh://root@kvm1/system', env)).toBe(
      `qemu+ssh://root@kvm1/system?command=${encodeURIComponent(wrapper)}`,
    );
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

  it('the wrapper is a private script that runs OpenSSH with ControlMaster in a 0700 socket directory', () => {
    withSshMux('qemu+ssh://root@kvm1/system', env);
    const wrapper = join(cache, 'labctl', 'ssh-mux');
    expect(statSync(wrapper).mode & 0o777).toBe(0o700);
    expect(statSync(join(cache, 'labctl', 'ssh')).mode & 0o777).toBe(0o700);
    expect(readFileSync(wrapper, 'utf8')).toContain(
      `exec ssh -o ControlMaster=auto -o "ControlPath=${cache}/labctl/ssh/%C-\${LABCTL_SSH_MUX_RUN:-0}" -o ControlPersist=5 "$@"`,
    );
    // It is a shell script that passes every argument on as it came (here to `ssh -G`, which prints
    // the options); the socket is the run's own.
    const resolved = execFileSync(wrapper, ['-G', '-p', '2222', '-l', 'admin', 'kvm1.lab.test'], {
      encoding: 'utf8',
      env: { ...process.env, LABCTL_SSH_MUX_RUN: '4242' },
    });
    expect(resolved).toMatch(/^controlpath .*-4242$/m);
    expect(resolved).toMatch(/^controlmaster auto$/m);
    expect(resolved).toMatch(/^port 2222$/m);
    expect(resolved).toMatch(/^user admin$/m);
    expect(resolved).toMatch(new RegExp(`^controlpath ${cache}/labctl/ssh/`, 'm'));
  });
});
