import { lstat, mkdir, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { connect, type SshConnectOptions } from '@labctl/remote/ssh';
import {
  runTestbedScript,
  SSH_TESTBED_SUDO_PASSWORD,
  type SshTestHosts,
  startSshHosts,
} from '@labctl/remote/ssh-testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfile, selectSteps } from './catalog.js';
import { prepTemplate } from './prep.js';
import { renderScript } from './script.js';

const TARGETS_SCRIPT = fileURLToPath(new URL('../../../scripts/testbed/template-targets.sh', import.meta.url));
const BASE_PORT = 22320; // template's tests own 22321-22325
const gate = requireTestbed('template prep over SSH (real sshd, fake CentOS roots)', {
  root: true,
  commands: ['sshd', 'ssh-keygen', 'unshare', 'nsenter', 'sudo', 'bash'],
});

/** Every file, link and removal the steps touch, read on the real filesystem under the target's root. */
async function snapshot(root: string): Promise<Record<string, string>> {
  const result: Record<string, string> = {};
  const walk = async (dir: string): Promise<void> => {
    for (const name of (await readdir(dir)).sort()) {
      const path = join(dir, name);
      const key = relative(root, path);
      if (key === 'standins/.state/calls.log') continue;
      const info = await lstat(path);
      if (info.isSymbolicLink()) result[key] = `link -> ${await readlink(path)}`;
      else if (info.isDirectory()) {
        result[key] = 'dir';
        await walk(path);
      } else result[key] = `file ${info.size === 0 ? '(empty)' : (await readFile(path, 'utf8')).trim()}`;
    }
  };
  for (const part of ['etc/sysconfig', 'etc/udev/rules.d', 'var', 'tmp', 'root', 'home', 'standins/.state']) {
    result[part] = 'dir';
    await walk(join(root, part));
  }
  for (const name of (await readdir(join(root, 'etc/ssh'))).filter((n) => n.startsWith('ssh_host_')))
    result[`etc/ssh/${name}`] = 'file';
  result['etc/machine-id'] = `file ${(await readFile(join(root, 'etc/machine-id'), 'utf8')).trim() || '(empty)'}`;
  return result;
}

describe.skipIf(gate.skip)(
  'template prep over real SSH on fake CentOS 7 roots (yum, rpm, firewall-cmd, systemctl are recording STAND-INS)',
  () => {
    // Not under /tmp: the targets get their own /tmp, and sshd must still read its host keys.
    const dir = `/run/labctl-template-test-${process.pid}`;
    let hosts: SshTestHosts | undefined;
    let ssh: SshConnectOptions;
    const profile = loadProfile('centos7');
    const target = (i: number, user = 'labctl-np') => `${user}@127.0.0.1:${BASE_PORT + i}`;
    const root = (i: number) => join(dir, `root${i}`);
    const calls = async (i: number) =>
      (await readFile(join(root(i), 'standins/.state/calls.log'), 'utf8')).trim().split('\n');

    beforeAll(async () => {
      await mkdir(dir, { recursive: true });
      hosts = await startSshHosts(dir, 5, BASE_PORT);
      for (const [i, flavor] of [
        [1, 'centos7'],
        [2, 'centos7'],
        [3, 'centos7'],
        [4, 'alpine'],
        [5, 'debian12'],
      ] as const) {
        await runTestbedScript(TARGETS_SCRIPT, ['up', dir, String(i), flavor]);
      }
      ssh = {
        knownHostsFile: hosts.knownHostsFile,
        identityFiles: [hosts.identityFile],
        agent: false,
        sshConfigFile: false,
      };
      // Safety: the steps are destructive. Every target must show its fake root over SSH, or nothing runs.
      for (let i = 1; i <= 5; i++) {
        const conn = await connect(target(i), ssh);
        const seen = await conn.exec('cat /etc/labctl-template-target').finally(() => conn.close());
        if (seen.stdout.trim() !== root(i))
          throw new Error(
            `target ${i} does not show its fake root (${seen.stderr.trim()}): refusing to run prep on the real machine`,
          );
      }
    });
    afterAll(async () => {
      await hosts?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    it('turns a fresh CentOS 7 root into a clone-safe template, then a second run changes nothing', async () => {
      const first = await prepTemplate({ target: target(1), ssh, profile, sudo: true });
      expect(first.distribution).toMatchObject({ id: 'centos', versionId: '7' });
      expect(first.privilege).toBe('sudo');
      expect(first.steps.filter((s) => s.status !== 'changed')).toEqual([]);
      expect(first.recap).toEqual({ ok: 0, changed: profile.steps.length - 1, skipped: 1, failed: 0 }); // seal is off
      const r = root(1);
      const ifcfg = await readFile(join(r, 'etc/sysconfig/network-scripts/ifcfg-eth0'), 'utf8');
      for (const kv of [
        'DEVICE=eth0',
        'ONBOOT=yes',
        'BOOTPROTO=dhcp',
        'TYPE=Ethernet',
        'USERCTL=no',
        'PEERDNS=yes',
        'IPV6INIT=no',
        'NM_CONTROLLED=no',
      ]) {
        expect(ifcfg.split('\n')).toContain(kv);
      }
      expect(ifcfg).not.toMatch(/^(HWADDR|UUID)=/m);
      expect(await readFile(join(r, 'etc/sysconfig/network-scripts/ifcfg-ens3'), 'utf8')).not.toContain('HWADDR');
      expect(await readFile(join(r, 'etc/sysconfig/network'), 'utf8')).toBe(
        '# Created by anaconda\nNETWORKING=yes\nHOSTNAME=localhost.localdomain\n',
      );
      expect(await readlink(join(r, 'etc/udev/rules.d/75-persistent-net-generator.rules'))).toBe('/dev/null');
      const state = await snapshot(r);
      expect(state['etc/udev/rules.d/70-persistent-net.rules']).toBeUndefined();
      expect(Object.keys(state).filter((k) => k.startsWith('etc/ssh/ssh_host_'))).toEqual([]);
      expect(state['etc/machine-id']).toBe('file (empty)');
      expect(state['var/lib/dbus/machine-id']).toBeUndefined();
      expect(Object.keys(state).filter((k) => /lease|random-seed|bash_history|-20260101|\.log\.1$/.test(k))).toEqual(
        [],
      );
      expect(state['var/log/messages']).toBe('file (empty)');
      expect(Object.keys(state).filter((k) => k.startsWith('var/cache/yum/'))).toEqual([]);
      expect(Object.keys(state).filter((k) => k.startsWith('tmp/') || k.startsWith('var/tmp/'))).toEqual([
        'tmp/systemd-private-abc-chronyd.service-x',
      ]);
      // What the STAND-INS recorded: permanent port + reload, packages, services.
      expect(await calls(1)).toEqual(
        expect.arrayContaining([
          'yum clean all',
          'yum -y update',
          'firewall-cmd --permanent --zone=public --add-port=22/tcp',
          'firewall-cmd --reload',
          'yum -y install hyperv-daemons',
          'systemctl enable --now hypervkvpd hypervvssd',
        ]),
      );
      expect(state['standins/.state/firewall-runtime']).toBe('file 22/tcp');
      expect(state['standins/.state/enabled']).toBe('file hypervkvpd\nhypervvssd');

      const second = await prepTemplate({ target: target(1), ssh, profile, sudo: true });
      expect(second.recap).toEqual({ ok: profile.steps.length - 1, changed: 0, skipped: 1, failed: 0 });
      expect(await snapshot(r)).toEqual(state);
    }, 120_000);

    it('--dry-run only checks and changes nothing; then a sudo-password user (password on stdin) reaches the same end state', async () => {
      const before = await snapshot(root(2));
      const dry = await prepTemplate({
        target: target(2, 'labctl-pw'),
        ssh,
        profile,
        sudo: true,
        dryRun: true,
        sudoPassword: () => SSH_TESTBED_SUDO_PASSWORD,
      });
      expect(dry.privilege).toBe('sudo-password');
      expect(dry.recap.changed).toBe(profile.steps.length - 1);
      expect(dry.steps.every((s) => s.dryRun && s.status === 'changed')).toBe(true);
      expect(await snapshot(root(2))).toEqual(before);
      expect((await calls(2)).every((call) => /check-update|--query-port|^rpm -q|is-enabled/.test(call))).toBe(true);

      await expect(
        prepTemplate({ target: target(2, 'labctl-pw'), ssh, profile, sudo: true, sudoPassword: () => 'wrong' }),
      ).rejects.toMatchObject({
        code: 'TEMPLATE_SUDO_REFUSED',
      });
      await expect(prepTemplate({ target: target(2, 'labctl-pw'), ssh, profile, sudo: true })).rejects.toMatchObject({
        code: 'TEMPLATE_SUDO_PASSWORD',
      });
      await expect(prepTemplate({ target: target(2, 'labctl-pw'), ssh, profile })).rejects.toMatchObject({
        code: 'TEMPLATE_NOT_ROOT',
      });
      const run = await prepTemplate({
        target: target(2, 'labctl-pw'),
        ssh,
        profile,
        sudo: true,
        sudoPassword: () => SSH_TESTBED_SUDO_PASSWORD,
      });
      expect(run.recap.failed).toBe(0);
      expect(await snapshot(root(2))).toEqual(await snapshot(root(1)));
    }, 120_000);

    it('the emitted bash script, piped to bash on a target, reaches the same end state and is idempotent', async () => {
      const script = renderScript(profile, selectSteps(profile));
      const conn = await connect(target(3), ssh);
      try {
        const first = await conn.exec('sudo -n bash -s', { stdin: script });
        expect(first.stderr).toBe('');
        expect(first.code).toBe(0);
        expect(first.stdout).toContain(`recap: ok=0 changed=${profile.steps.length - 1} failed=0`);
        const second = await conn.exec('sudo -n bash -s', { stdin: script });
        expect(second.stdout).toContain(`recap: ok=${profile.steps.length - 1} changed=0 failed=0`);
      } finally {
        await conn.close();
      }
      expect(await snapshot(root(3))).toEqual(await snapshot(root(1)));
    }, 120_000);

    it('refuses an unsupported distribution before changing anything (the script too), unless forced', async () => {
      const before = await snapshot(root(4));
      const error = await prepTemplate({ target: target(4), ssh, profile, sudo: true }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'TEMPLATE_UNSUPPORTED_DISTRO', exitCode: 2 });
      expect((error as Error).message).toContain('Alpine Linux v3.20');
      const conn = await connect(target(4), ssh);
      try {
        const scripted = await conn.exec('sudo -n bash -s', { stdin: renderScript(profile, selectSteps(profile)) });
        expect(scripted.code).toBe(2);
        expect(scripted.stderr).toContain('unsupported distribution alpine');
      } finally {
        await conn.close();
      }
      expect(await snapshot(root(4))).toEqual(before);
    });

    it('a failing step stops the run naming the failed command and its stderr; --keep-going runs the rest', async () => {
      const file = join(dir, 'broken.yaml');
      await writeFile(
        file,
        'profile: broken\nextends: [centos7]\nsteps:\n  - id: broken-copy\n    description: Copy a file that does not exist\n    check: exit 1\n    apply: |\n      cp /no/such/file /etc/broken\n',
      );
      const broken = loadProfile(file);
      const selection = { steps: ['broken-copy', 'random-seed'] };
      const stopped = await prepTemplate({
        target: target(4),
        ssh,
        profile: broken,
        selection,
        sudo: true,
        force: true,
      });
      expect(stopped.steps.map((s) => [s.id, s.status])).toEqual([
        ['broken-copy', 'failed'],
        ['random-seed', 'skipped'],
      ]);
      expect(stopped.steps[0]?.failure).toMatchObject({ part: 'apply', exitCode: 1 });
      expect(stopped.steps[0]?.failure?.stderr).toContain('command failed (exit 1): cp /no/such/file /etc/broken');
      expect(stopped.steps[0]?.failure?.stderr).toContain('No such file or directory');
      const going = await prepTemplate({
        target: target(4),
        ssh,
        profile: broken,
        selection,
        sudo: true,
        force: true,
        keepGoing: true,
      });
      expect(going.steps.map((s) => s.status)).toEqual(['failed', 'changed']);
    });

    it('the Debian profile on a fake Debian 12 root (apt-get, dpkg-query, systemctl are STAND-INS): same generalize steps, then zero changes', async () => {
      const debian = loadProfile('debian');
      const first = await prepTemplate({ target: target(5), ssh, profile: debian, sudo: true });
      expect(first.distribution).toMatchObject({ id: 'debian', versionId: '12' });
      expect(
        first.steps
          .filter((s) => s.status !== 'changed')
          .map((s) => `${s.id} ${s.status} ${s.reason ?? ''} ${s.failure?.stderr ?? ''}`),
      ).toEqual([]);
      expect(first.recap).toEqual({ ok: 0, changed: debian.steps.length - 1, skipped: 1, failed: 0 });
      expect(await calls(5)).toEqual(
        expect.arrayContaining([
          'apt-get -y -q upgrade',
          'apt-get -y -q install hyperv-daemons',
          'systemctl enable --now hv-kvp-daemon hv-vss-daemon',
          'apt-get clean',
        ]),
      );
      const state = await snapshot(root(5));
      expect(Object.keys(state).filter((k) => /\.deb$|leases|ssh_host_|bash_history/.test(k))).toEqual([]);
      expect((await prepTemplate({ target: target(5), ssh, profile: debian, sudo: true })).recap.changed).toBe(0);
    }, 120_000);

    it('--seal runs the final scrub and powers off (the systemctl STAND-IN records poweroff after the session ends)', async () => {
      const sealed = await prepTemplate({
        target: target(1),
        ssh,
        profile,
        selection: { steps: ['seal'] },
        sudo: true,
      });
      expect(sealed.steps.map((s) => [s.id, s.status])).toEqual([['seal', 'changed']]);
      for (let i = 0; i < 50 && !(await calls(1)).includes('systemctl poweroff'); i++)
        await new Promise((r) => setTimeout(r, 100));
      expect(await calls(1)).toContain('systemctl poweroff');
      const unsealed = await prepTemplate({ target: target(1), ssh, profile, sudo: true });
      expect(unsealed.recap.changed).toBe(0); // seal is off by default and left nothing to redo
    });

    it('refuses a host whose key differs from known_hosts, before running anything', async () => {
      const known = await readFile(hosts?.knownHostsFile ?? '', 'utf8');
      const swapped = join(dir, 'swapped_known_hosts');
      await writeFile(
        swapped,
        known
          .replaceAll(`:${BASE_PORT + 1} `, `:${BASE_PORT + 9} `)
          .replaceAll(`:${BASE_PORT + 4} `, `:${BASE_PORT + 1} `),
      );
      const before = await calls(1);
      await expect(
        prepTemplate({ target: target(1), ssh: { ...ssh, knownHostsFile: swapped }, profile, sudo: true }),
      ).rejects.toMatchObject({
        code: 'SSH_HOST_KEY_CHANGED',
      });
      expect(await calls(1)).toEqual(before);
    });
  },
);
