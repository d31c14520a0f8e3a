import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadedLabFile } from '@labctl/core/spec';
import { parseLabFile } from '@labctl/core/spec';
import { describe, expect, it } from 'vitest';
import { parseHostsFile, passwordFromEnvOrFile, resolveSettings } from './options.js';

function lab(yaml: string, dir = '/labs/x'): LoadedLabFile {
  return {
    path: join(dir, 'labctl.yaml'),
    spec: parseLabFile(yaml, 'labctl.yaml'),
    lab: 'x',
    resolvePath: (p) => join(dir, p),
  };
}

describe('delegation settings', () => {
  it('takes flags over the lab file, derives the base DN, defaults the services', async () => {
    const settings = await resolveSettings(
      { hosts: 'hv01,hv02', domain: 'Lab.Test.' },
      lab(
        'delegation:\n  hosts: [a1, a2]\n  ldapUrl: ldaps://dc01.lab.test\n  bindUser: admin@lab.test\n  caFile: ca.pem\n',
      ),
      true,
    );
    expect(settings).toMatchObject({
      hosts: [{ short: 'HV01' }, { short: 'HV02' }],
      domain: 'lab.test',
      baseDn: 'DC=lab,DC=test',
      services: ['Microsoft Virtual System Migration Service', 'cifs'],
      ldapUrl: 'ldaps://dc01.lab.test',
      caFile: '/labs/x/ca.pem',
    });
  });

  it('falls back to the lab hosts list, and refuses unknown delegation keys with the key name', async () => {
    const fromHosts = await resolveSettings(
      { domain: 'lab.test' },
      lab('hosts:\n  - name: hv01\n  - name: hv02\n'),
      false,
    );
    expect(fromHosts.hosts.map((h) => h.short)).toEqual(['HV01', 'HV02']);
    await expect(
      resolveSettings({ hosts: 'a,b', domain: 'lab.test' }, lab('delegation:\n  passwrd: x\n'), false),
    ).rejects.toMatchObject({
      code: 'LABFILE_INVALID',
      exitCode: 2,
      message: expect.stringContaining('delegation.passwrd'),
    });
  });

  it('refuses bad input before connecting (exit 2)', async () => {
    const cases: Array<[Parameters<typeof resolveSettings>[0], string]> = [
      [{ hosts: 'hv01', domain: 'lab.test' }, 'DELEGATION_HOSTS'],
      [{ hosts: 'hv01,hv02' }, 'DELEGATION_DOMAIN'],
      [{ hosts: 'hv01,hv02', domain: 'lab test' }, 'DELEGATION_DOMAIN'],
      [{ hosts: 'hv01,hv02', domain: 'lab.test', bindUser: 'a@lab.test' }, 'LDAP_URL_MISSING'],
      [{ hosts: 'hv01,hv02', domain: 'lab.test', ldapUrl: 'http://dc', bindUser: 'a' }, 'LDAP_BAD_URL'],
      [{ hosts: 'hv01,hv02', domain: 'lab.test', ldapUrl: 'ldaps://dc' }, 'LDAP_BIND_USER_MISSING'],
      [{ hosts: 'hv01,hv02', domain: 'lab.test', services: 'cifs/x' }, 'DELEGATION_BAD_SERVICE'],
    ];
    for (const [flags, code] of cases)
      await expect(resolveSettings(flags, undefined, true), code).rejects.toMatchObject({ code, exitCode: 2 });
  });

  it('reads hosts files and password files, and the password from the environment', async () => {
    expect(parseHostsFile('# Hyper-V hosts\nhv01, hv02\nhv03 hv04 # rack 2\n\n')).toEqual([
      'hv01',
      'hv02',
      'hv03',
      'hv04',
    ]);
    const dir = await mkdtemp(join(tmpdir(), 'labctl-delegation-options-'));
    await writeFile(join(dir, 'pw'), 'S3cret! with spaces\nsecond line\n');
    expect(await passwordFromEnvOrFile(join(dir, 'pw'), {})).toBe('S3cret! with spaces');
    expect(await passwordFromEnvOrFile(undefined, { LABCTL_LDAP_PASSWORD: 'from-env' })).toBe('from-env');
    expect(await passwordFromEnvOrFile(undefined, {})).toBeUndefined();
    await expect(passwordFromEnvOrFile(join(dir, 'missing'), {})).rejects.toMatchObject({
      code: 'LDAP_PASSWORD_FILE',
      exitCode: 2,
    });
    await rm(dir, { recursive: true, force: true });
  });
});
