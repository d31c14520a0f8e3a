import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { powershellSyntaxProblems } from '@labctl/core/testing/powershell-syntax';
import { requireTestbed } from '@labctl/core/testing/testbed';
import {
  adminClient,
  type SambaDc,
  sambaToolShow,
  seedComputers,
  startSambaDc,
} from '@labctl/delegation/testing/samba-dc';
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
