import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { powershellSyntaxProblems } from '@labctl/core/testing/powershell-syntax';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { requirePwsh } from '@labctl/hyperv/testing/sim-state';
import {
  adminClient,
  type SambaDc,
  sambaToolShow,
  seedComputers,
  startSambaDc,
} from '@labctl/delegation/testing/samba-dc';
import { defaultHost, RecordedHosts } from '@labctl/hyperv/testing/recorded-hosts';
import type { Client } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** `labctl delegation ...` as a user runs it (the built binary). Needs `turbo run build` first. */
const bin = resolve(import.meta.dirname, '../../../bin/run.js');

async function labctl(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const childEnv = { ...process.env, LABCTL_LDAP_PASSWORD: '', ...env };
  try {
    const { stdout, stderr } = await promisify(execFile)('node', [bin, ...args], { env: childEnv });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('labctl delegation (no DC needed)', () => {
  it('refuses bad input with exit 2 before connecting to anything', async () => {
    const target = ['--domain', 'lab.test', '--ldap-url', 'ldaps://127.0.0.1:1', '--bind-user', 'a@lab.test'];
    const cases: Array<[string[], string]> = [
      [['delegation', 'apply', '--hosts', 'hv01', ...target], 'DELEGATION_HOSTS'],
      [['delegation', 'apply', '--hosts', 'hv01,hv0)(2', ...target], 'DELEGATION_BAD_HOST'],
      [
        [
          'delegation',
          'plan',
          '--hosts',
          'hv01,hv02',
          '--domain',
          'lab.test',
          '--ldap-url',
          'http://dc',
          '--bind-user',
          'a',
        ],
        'LDAP_BAD_URL',
      ],
      [['delegation', 'verify', '--hosts', 'hv01,hv02', ...target], 'LDAP_PASSWORD_MISSING'],
      [['delegation', 'apply', '--hosts', 'hv01,hv02', ...target, '--password', 'x'], 'USAGE'],
    ];
    const results = await Promise.all(cases.map(([args]) => labctl([...args, '--json'])));
    results.forEach((result, i) => {
      const [args, code] = cases[i]!;
      expect(result.code, args.join(' ')).toBe(2);
      expect(JSON.parse(result.stdout).error.code, args.join(' ')).toBe(code);
    });
  }, 180_000);

  it('--configure-hosts: a host missing from hosts: exits 2 before LDAP or SSH is contacted', async () => {
    const lab = await mkdtemp(join(tmpdir(), 'labctl-cli-delegation-nohost-'));
    try {
      await writeFile(join(lab, 'labctl.yaml'), 'hosts:\n  - { name: hv01, address: admin@127.0.0.1:1 }\n');
      const target = ['--domain', 'lab.test', '--ldap-url', 'ldaps://127.0.0.1:1', '--bind-user', 'a@lab.test'];
      for (const command of ['plan', 'apply', 'verify']) {
        const result = await labctl(
          ['delegation', command, '--hosts', 'hv01,hv02', ...target, '--configure-hosts', '--lab-dir', lab, '--json'],
          { LABCTL_LDAP_PASSWORD: 'x' },
        );
        expect(result.code, command).toBe(2);
        expect(JSON.parse(result.stdout).error, command).toMatchObject({
          code: 'MIGRATION_HOST_UNKNOWN',
          message: expect.stringContaining('hv02'),
        });
      }
    } finally {
      await rm(lab, { recursive: true, force: true });
    }
  }, 180_000);

  it('script prints PowerShell that parses, with the hosts as literals', async () => {
    const { code, stdout } = await labctl([
      'delegation',
      'script',
      '--hosts',
      'hv01,hv02.lab.test,hv03',
      '--domain',
      'lab.test',
      '--json',
    ]);
    expect(code).toBe(0);
    const result = JSON.parse(stdout) as { mode: string; hosts: string[]; script: string };
    expect(result).toMatchObject({ mode: 'apply', hosts: ['HV01', 'HV02', 'HV03'] });
    expect(await powershellSyntaxProblems(result.script)).toEqual([]);
    const removal = await labctl(['delegation', 'script', '--hosts', 'hv01,hv02', '--domain', 'lab.test', '--remove']);
    expect(removal.stdout).toContain("-Remove @{ 'msDS-AllowedToDelegateTo'");
    expect(await powershellSyntaxProblems(removal.stdout)).toEqual([]);
  }, 180_000);
});

const gate = requireTestbed('labctl delegation against a Samba AD DC', {
  root: true,
  commands: ['samba', 'samba-tool', 'ldapsearch', 'openssl', 'unshare'],
});

describe.skipIf(gate.skip)('labctl delegation against Samba AD', () => {
  let dc: SambaDc;
  let admin: Client;
  let labDir: string;

  beforeAll(async () => {
    dc = startSambaDc('labctl-cli-delegation-');
    admin = await adminClient(dc);
    await seedComputers(admin, dc, ['HV01', 'HV02', 'HV03'], { userAccountControl: 0x1000 | 0x80000 });
    labDir = await mkdtemp(join(tmpdir(), 'labctl-cli-delegation-lab-'));
    await writeFile(join(labDir, 'ldap-password'), `${dc.password}\n`, { mode: 0o600 });
    await writeFile(
      join(labDir, 'labctl.yaml'),
      [
        'delegation:',
        '  hosts: [hv01, hv02, hv03]',
        `  domain: ${dc.domain}`,
        `  ldapUrl: ${dc.url}`,
        `  bindUser: ${dc.bindUser}`,
        `  caFile: ${dc.caFile}`,
        '  passwordFile: ldap-password',
        '',
      ].join('\n'),
    );
  });
  afterAll(async () => {
    await admin?.unbind().catch(() => {});
    dc?.stop();
    if (labDir) await rm(labDir, { recursive: true, force: true });
  });

  it('apply configures the mesh from the lab file, verify proves it, a re-run changes nothing; the password never shows', async () => {
    const applied = await labctl(['delegation', 'apply', '--lab-dir', labDir]);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(/HV02\s+changed\s+\+8 value\(s\), userAccountControl 0x81000 -> 0x1001000/);
    expect(applied.stdout).toContain('directory operations: 1 search(es), 3 modify(ies)');
    expect(await sambaToolShow(dc, 'HV02')).toMatchObject({
      trustedToAuthForDelegation: true,
      trustedForDelegation: false,
    });

    const verified = await labctl(['delegation', 'verify', '--lab-dir', labDir, '--json']);
    expect(verified.code).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true, gaps: [], operations: { searches: 1, modifies: 0 } });

    const again = await labctl(['delegation', 'apply', '--lab-dir', labDir]);
    expect(again.stdout).toContain('Nothing to change: 3 host(s) already configured.');
    for (const output of [applied, verified, again]) expect(output.stdout + output.stderr).not.toContain(dc.password);
  }, 180_000);

  it('flags with the password in the environment; a missing host exits 1 after doing the rest; verify lists the gaps', async () => {
    const flags = ['--domain', dc.domain, '--ldap-url', dc.url, '--bind-user', dc.bindUser, '--ca-file', dc.caFile];
    const env = { LABCTL_LDAP_PASSWORD: dc.password };
    const removed = await labctl(
      ['delegation', 'remove', '--hosts', 'hv01,hv02,hv03', '--reset-flags', ...flags, '--json'],
      env,
    );
    expect(removed.code).toBe(0);
    expect(JSON.parse(removed.stdout)).toMatchObject({ ok: true, changed: 3 });

    const gaps = await labctl(['delegation', 'verify', '--hosts', 'hv01,hv02', ...flags, '--json'], env);
    expect(gaps.code).toBe(1);
    const error = JSON.parse(gaps.stdout).error;
    expect(error.code).toBe('DELEGATION_GAPS');
    expect(error.details.gaps).toHaveLength(2);

    const partial = await labctl(['delegation', 'apply', '--hosts', 'hv01,hv02,hv77', ...flags, '--json'], env);
    expect(partial.code).toBe(1);
    const failure = JSON.parse(partial.stdout).error;
    expect(failure).toMatchObject({ code: 'DELEGATION_INCOMPLETE', details: { missing: ['HV77'], changed: 2 } });
    expect((await labctl(['delegation', 'verify', '--hosts', 'hv01,hv02', ...flags], env)).code).toBe(0);

    const wrong = await labctl(['delegation', 'plan', '--hosts', 'hv01,hv02', ...flags, '--json'], {
      LABCTL_LDAP_PASSWORD: 'wrong-Passw0rd',
    });
    expect(wrong.code).toBe(1);
    expect(JSON.parse(wrong.stdout).error.code).toBe('LDAP_BIND_FAILED');
    expect(wrong.stdout + wrong.stderr).not.toContain('wrong-Passw0rd');
  }, 180_000);
});

const hostsGate = requirePwsh(
  'labctl delegation --configure-hosts (Samba AD DC and sshd with pwsh and the Hyper-V simulator)',
  {
    root: true,
    commands: ['samba', 'samba-tool', 'ldapsearch', 'openssl', 'unshare', 'sshd', 'ssh-keygen'],
  },
);

/**
 * The LDAP part against a real Samba AD DC, the host part over real SSH to simulated Hyper-V hosts
 * (scripts/testbed/hyperv-hosts.sh), both through the built binary. hv13 and hv14 point at a port
 * nothing listens on (a host that is down); hv14 is not in AD.
 */
describe.skipIf(hostsGate.skip)(
  'labctl delegation --configure-hosts against Samba AD and simulated Hyper-V hosts',
  () => {
    let dc: SambaDc;
    let admin: Client;
    let hv: RecordedHosts;
    let labDir: string;
    let flags: string[];
    const env = () => ({ LABCTL_LDAP_PASSWORD: dc.password });
    const vmHost = (index: number) => hv.host(hv.ports[index]!).vmHost;
    const runs = (index: number) => hv.invocations(hv.ports[index]!).length;

    beforeAll(async () => {
      dc = startSambaDc('labctl-cli-delegation-hosts-');
      admin = await adminClient(dc);
      await seedComputers(admin, dc, ['HV11', 'HV12', 'HV13'], { userAccountControl: 0x1000 | 0x80000 });
      hv = new RecordedHosts(2, 22450);
      hv.reset(hv.ports[0]!, defaultHost(), { computerName: 'HV11' });
      hv.reset(hv.ports[1]!, defaultHost(), { computerName: 'HV12' });
      labDir = await mkdtemp(join(tmpdir(), 'labctl-cli-delegation-hosts-lab-'));
      await writeFile(
        join(labDir, 'labctl.yaml'),
        [
          'hosts:',
          `  - { name: hv11, address: 'labctl-np@127.0.0.1:${hv.ports[0]}' }`,
          `  - { name: hv12.${dc.domain}, address: 'labctl-np@127.0.0.1:${hv.ports[1]}' }`,
          "  - { name: hv13, address: 'labctl-np@127.0.0.1:22459' }",
          "  - { name: hv14, address: 'labctl-np@127.0.0.1:22459' }",
          'hyperv:',
          `  knownHosts: ${join(hv.dir, 'known_hosts')}`,
          `  identityFile: ${join(hv.dir, 'client', 'id_ed25519')}`,
          '',
        ].join('\n'),
      );
      flags = [
        '--domain',
        dc.domain,
        '--ldap-url',
        dc.url,
        '--bind-user',
        dc.bindUser,
        '--ca-file',
        dc.caFile,
        '--lab-dir',
        labDir,
      ];
    });
    afterAll(async () => {
      await admin?.unbind().catch(() => {});
      dc?.stop();
      hv?.stop();
      if (labDir) await rm(labDir, { recursive: true, force: true });
    });

    it('plan reads the hosts and changes nothing; apply does LDAP then both settings per host; verify proves it; a re-run changes nothing', async () => {
      const planned = await labctl(
        ['delegation', 'plan', '--hosts', 'hv11,hv12', ...flags, '--configure-hosts', '--json'],
        env(),
      );
      expect(planned.code, planned.stdout + planned.stderr).toBe(0);
      const plan = JSON.parse(planned.stdout);
      expect(plan.migration).toMatchObject({ scriptRuns: 2, needsChange: 2, changed: 0 });
      expect(plan.migration.outcomes[1]).toMatchObject({
        host: 'HV12',
        labHost: `hv12.${dc.domain}`,
        status: 'needs-change',
      });
      for (const index of [0, 1]) {
        expect(vmHost(index)).toMatchObject({
          VirtualMachineMigrationEnabled: false,
          VirtualMachineMigrationAuthenticationType: 0,
        });
      }

      const applied = await labctl(
        ['delegation', 'apply', '--hosts', 'hv11,hv12', ...flags, '--configure-hosts'],
        env(),
      );
      expect(applied.code, applied.stdout + applied.stderr).toBe(0);
      expect(applied.stdout).toContain('directory operations: 1 search(es), 2 modify(ies)');
      expect(applied.stdout).toMatch(
        /HV11\s+labctl-np@127\.0\.0\.1:\d+\s+changed\s+ran: Enable-VMMigration; Set-VMHost -VirtualMachineMigrationAuthenticationType Kerberos/,
      );
      expect(applied.stdout).toContain('host script runs: 2');
      expect(applied.stderr).toMatch(/warning: HV11: no migration network/);
      for (const index of [0, 1]) {
        expect(vmHost(index)).toMatchObject({
          VirtualMachineMigrationEnabled: true,
          VirtualMachineMigrationAuthenticationType: 1,
        });
      }
      expect(await sambaToolShow(dc, 'HV11')).toMatchObject({
        trustedToAuthForDelegation: true,
        trustedForDelegation: false,
      });

      const verified = await labctl(
        ['delegation', 'verify', '--hosts', 'hv11,hv12', ...flags, '--configure-hosts', '--json'],
        env(),
      );
      expect(verified.code, verified.stdout).toBe(0);
      expect(JSON.parse(verified.stdout)).toMatchObject({
        ok: true,
        gaps: [],
        migration: { unchanged: 2, needsChange: 0 },
      });

      const again = await labctl(
        ['delegation', 'apply', '--hosts', 'hv11,hv12', ...flags, '--configure-hosts', '--json'],
        env(),
      );
      expect(again.code).toBe(0);
      const rerun = JSON.parse(again.stdout);
      expect(rerun).toMatchObject({
        ok: true,
        changed: 0,
        unchanged: 2,
        migration: { changed: 0, unchanged: 2, failed: 0 },
      });
      expect(
        rerun.migration.outcomes.map((o: { steps: Array<{ status: string }> }) => o.steps.map((step) => step.status)),
      ).toEqual([
        ['unchanged', 'unchanged'],
        ['unchanged', 'unchanged'],
      ]);
      // One script run per host per command.
      expect([runs(0), runs(1)]).toEqual([4, 4]);
    }, 240_000);

    it('a host that is down fails alone, a host not in AD is skipped (not contacted), the others are done; exit 1; verify names the gap', async () => {
      // hv11 fresh, hv12 already set up (migration on, Kerberos).
      hv.reset(hv.ports[0]!, defaultHost(), { computerName: 'HV11' });
      const configured = defaultHost();
      configured.vmHost = {
        VirtualMachineMigrationEnabled: true,
        VirtualMachineMigrationAuthenticationType: 1,
        UseAnyNetworkForMigration: true,
        MaximumVirtualMachineMigrations: 2,
        MigrationNetworks: [],
      };
      hv.reset(hv.ports[1]!, configured, { computerName: 'HV12' });
      const partial = await labctl(
        ['delegation', 'apply', '--hosts', 'hv11,hv12,hv13,hv14', ...flags, '--configure-hosts', '--json'],
        env(),
      );
      expect(partial.code, partial.stdout + partial.stderr).toBe(1);
      const error = JSON.parse(partial.stdout).error;
      expect(error.code).toBe('DELEGATION_INCOMPLETE');
      expect(error.message).toMatch(
        /not in the directory: HV14\); 1 Hyper-V host\(s\) failed; 1 Hyper-V host\(s\) skipped/,
      );
      const outcomes = error.details.migration.outcomes as Array<{ host: string; status: string; error?: string }>;
      expect(outcomes.map((o) => [o.host, o.status])).toEqual([
        ['HV11', 'changed'],
        ['HV12', 'unchanged'],
        ['HV13', 'failed'],
        ['HV14', 'skipped'],
      ]);
      expect(outcomes[2]?.error).toMatch(/127\.0\.0\.1:22459/);
      expect(outcomes[3]?.error).toMatch(/not in the directory/);
      expect(error.details.migration.scriptRuns).toBe(2);
      expect(vmHost(0)).toMatchObject({
        VirtualMachineMigrationEnabled: true,
        VirtualMachineMigrationAuthenticationType: 1,
      });
      // The LDAP part for HV13 is done; only its host side is missing.
      expect(await sambaToolShow(dc, 'HV13')).toMatchObject({ trustedToAuthForDelegation: true });

      const gaps = await labctl(
        ['delegation', 'verify', '--hosts', 'hv11,hv12,hv13', ...flags, '--configure-hosts', '--json'],
        env(),
      );
      expect(gaps.code).toBe(1);
      const gap = JSON.parse(gaps.stdout).error;
      expect(gap.code).toBe('DELEGATION_GAPS');
      expect(gap.message).toContain('1 Hyper-V host(s) without live migration by Kerberos');
      expect(gap.details.gaps).toEqual([]);
    }, 240_000);
  },
);
