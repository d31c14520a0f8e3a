import { LabctlError } from '@labctl/core/errors';
import { requireTestbed } from '@labctl/core/testing/testbed';
import type { Client } from 'ldapts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { executePlan, planDelegation } from './delegation.js';
import { change, connectDirectory, type Directory } from './directory.js';
import { parseHostNames, UF_TRUSTED_FOR_DELEGATION, UF_TRUSTED_TO_AUTH_FOR_DELEGATION } from './mesh.js';
import type { DelegationSettings } from './options.js';
import {
  type ConnectionSettings,
  executeReport,
  migrationDelegationFindings,
  planReport,
  verifyReport,
} from './service.js';
import {
  adminClient,
  computerDn,
  type SambaDc,
  sambaToolShow,
  seedComputers,
  startSambaDc,
  UF_WORKSTATION_TRUST_ACCOUNT,
} from './testing/samba-dc.js';

/**
 * Against a real Samba AD DC (scripts/testbed/samba-ad.sh: provisioned once for this file, LDAPS
 * with its own test CA, loopback only). Each test uses its own computer objects.
 */
const gate = requireTestbed('delegation tests against a Samba AD DC', {
  root: true,
  commands: ['samba', 'samba-tool', 'ldapsearch', 'openssl', 'unshare'],
});
const MVSMS = 'Microsoft Virtual System Migration Service';
const DONT_EXPIRE_PASSWORD = 0x10000;

describe.skipIf(gate.skip)('delegation against Samba AD', { timeout: 120_000 }, () => {
  let dc: SambaDc;
  let admin: Client;

  beforeAll(async () => {
    dc = startSambaDc();
    admin = await adminClient(dc);
  });
  afterAll(async () => {
    await admin?.unbind().catch(() => {});
    dc?.stop();
  });

  const names = (prefix: string, count: number) =>
    Array.from({ length: count }, (_, i) => `${prefix}${String(i + 1).padStart(2, '0')}`);
  const settings = (hosts: string[], extra: Partial<DelegationSettings> = {}): DelegationSettings => ({
    ...parseHostNames(hosts),
    domain: dc.domain,
    baseDn: dc.baseDn,
    services: [MVSMS, 'cifs'],
    ldapUrl: dc.url,
    bindUser: dc.bindUser,
    caFile: dc.caFile,
    passwordFile: undefined,
    insecure: false,
    ...extra,
  });
  const connection = (extra: Partial<ConnectionSettings> = {}): ConnectionSettings => ({
    url: dc.url,
    bindUser: dc.bindUser,
    password: dc.password,
    caFile: dc.caFile,
    ...extra,
  });
  const readObject = async (name: string) => {
    const { searchEntries } = await admin.search(computerDn(dc, name), {
      scope: 'base',
      attributes: ['msDS-AllowedToDelegateTo', 'userAccountControl'],
    });
    const entry = searchEntries[0]!;
    const raw = entry['msDS-AllowedToDelegateTo'] ?? [];
    return { values: (Array.isArray(raw) ? raw : [raw]).map(String), uac: Number(entry.userAccountControl) };
  };
  const expectedValues = (self: string, all: string[]) =>
    all
      .filter((other) => other !== self)
      .flatMap((other) => [
        `${MVSMS}/${other.toLowerCase()}.${dc.domain}`,
        `${MVSMS}/${other}`,
        `cifs/${other.toLowerCase()}.${dc.domain}`,
        `cifs/${other}`,
      ]);
  const sorted = (values: string[]) => [...values].sort();

  it('migration preflight: a configured pair passes; a missing SPN value and a missing protocol-transition flag are named with the fix', async () => {
    const hosts = names('MG', 2);
    await seedComputers(admin, dc, hosts, { userAccountControl: UF_WORKSTATION_TRUST_ACCOUNT });
    const { hosts: _hosts, duplicates: _duplicates, ...rest } = settings(hosts);
    const findings = () => migrationDelegationFindings(rest, connection(), 'mg01', `mg02.${dc.domain}`);
    const fresh = await findings();
    expect(fresh.map((finding) => finding.problem)).toEqual([
      `MG01 may not delegate to ${MVSMS}/mg02.${dc.domain}, ${MVSMS}/MG02, cifs/mg02.${dc.domain}, cifs/MG02 (msDS-AllowedToDelegateTo)`,
      'MG01 is not trusted to authenticate for delegation (userAccountControl lacks 0x1000000, "use any authentication protocol")',
    ]);
    expect(fresh[0]!.fix).toBe("labctl delegation apply --hosts MG01,MG02 (with the lab's other hosts)");

    expect((await executeReport(settings(hosts), connection(), { kind: 'apply' })).ok).toBe(true);
    expect(await findings()).toEqual([]);

    // One value gone (cifs to the short name), then the flag: each named on its own.
    await admin.modify(computerDn(dc, 'MG01'), [change('delete', 'msDS-AllowedToDelegateTo', ['cifs/MG02'])]);
    expect((await findings()).map((finding) => finding.problem)).toEqual([
      'MG01 may not delegate to cifs/MG02 (msDS-AllowedToDelegateTo)',
    ]);
    await executeReport(settings(hosts), connection(), { kind: 'apply' });
    await admin.modify(computerDn(dc, 'MG01'), [
      change('replace', 'userAccountControl', [String(UF_WORKSTATION_TRUST_ACCOUNT)]),
    ]);
    expect((await findings()).map((finding) => finding.problem)).toEqual([
      'MG01 is not trusted to authenticate for delegation (userAccountControl lacks 0x1000000, "use any authentication protocol")',
    ]);
    // A destination the directory does not have.
    const missing = await migrationDelegationFindings(rest, connection(), 'mg01', 'mg404');
    expect(missing.map((finding) => finding.problem)).toContain(`MG404 has no computer object under ${dc.baseDn}`);
  });

  it('plan reads once, lists per host the values and the flag change, writes nothing', async () => {
    const hosts = names('PL', 3);
    await seedComputers(admin, dc, hosts, {
      userAccountControl: UF_WORKSTATION_TRUST_ACCOUNT | UF_TRUSTED_FOR_DELEGATION,
    });
    const report = await planReport(settings([...hosts, 'pl01']), connection());
    expect(report.operations).toEqual({ searches: 1, modifies: 0 });
    expect(report.duplicates).toEqual(['pl01']);
    expect(report.changes.map((c) => c.host)).toEqual(hosts);
    expect(sorted(report.changes[0]!.add)).toEqual(sorted(expectedValues('PL01', hosts)));
    expect(report.changes[0]!.userAccountControl).toEqual({ from: '0x81000', to: '0x1001000' });
    expect((await readObject('PL01')).values).toEqual([]);
  });

  it('apply configures a 3-host mesh (as samba-tool sees it), verify proves it, a re-run changes nothing in one search', async () => {
    const hosts = names('TH', 3);
    await seedComputers(admin, dc, hosts, {
      userAccountControl: UF_WORKSTATION_TRUST_ACCOUNT | UF_TRUSTED_FOR_DELEGATION | DONT_EXPIRE_PASSWORD,
    });
    // An unrelated delegation value that must survive apply and remove.
    await admin.modify(computerDn(dc, 'TH01'), [change('add', 'msDS-AllowedToDelegateTo', ['HTTP/web01.lab.test'])]);

    const before = await verifyReport(settings(hosts), connection());
    expect(before.ok).toBe(false);
    expect(
      before.gaps.map((gap) => [gap.host, gap.missingValues.length, gap.protocolTransition, gap.unconstrained]),
    ).toEqual(hosts.map((host) => [host, 8, false, true]));

    const applied = await executeReport(settings(hosts), connection(), { kind: 'apply' });
    expect(applied).toMatchObject({
      ok: true,
      changed: 3,
      unchanged: 0,
      failed: 0,
      operations: { searches: 1, modifies: 3 },
    });

    for (const host of hosts) {
      const view = await sambaToolShow(dc, host);
      const unrelated = host === 'TH01' ? ['HTTP/web01.lab.test'] : [];
      expect(sorted(view.allowedToDelegateTo)).toEqual(sorted([...expectedValues(host, hosts), ...unrelated]));
      expect(view).toMatchObject({ trustedToAuthForDelegation: true, trustedForDelegation: false });
      // Other bits are kept: read-modify-write, never a blind write of the flags.
      expect((await readObject(host)).uac).toBe(
        UF_WORKSTATION_TRUST_ACCOUNT | DONT_EXPIRE_PASSWORD | UF_TRUSTED_TO_AUTH_FOR_DELEGATION,
      );
    }

    const verified = await verifyReport(settings(hosts), connection());
    expect(verified).toMatchObject({ ok: true, gaps: [], operations: { searches: 1, modifies: 0 } });
    const again = await executeReport(settings(hosts), connection(), { kind: 'apply' });
    expect(again).toMatchObject({ ok: true, changed: 0, unchanged: 3, operations: { searches: 1, modifies: 0 } });

    // remove: exactly labctl's values; the unrelated one stays; flags only with resetFlags.
    const removed = await executeReport(settings(hosts), connection(), { kind: 'remove', resetFlags: false });
    expect(removed).toMatchObject({ ok: true, changed: 3, operations: { searches: 1, modifies: 3 } });
    expect((await readObject('TH01')).values).toEqual(['HTTP/web01.lab.test']);
    expect((await sambaToolShow(dc, 'TH02')).trustedToAuthForDelegation).toBe(true);
    const reset = await executeReport(settings(hosts), connection(), { kind: 'remove', resetFlags: true });
    expect(reset).toMatchObject({ changed: 3, operations: { searches: 1, modifies: 3 } });
    for (const host of hosts)
      expect((await readObject(host)).uac).toBe(UF_WORKSTATION_TRUST_ACCOUNT | DONT_EXPIRE_PASSWORD);
    const removedAgain = await executeReport(settings(hosts), connection(), { kind: 'remove', resetFlags: true });
    expect(removedAgain).toMatchObject({ changed: 0, unchanged: 3, operations: { searches: 1, modifies: 0 } });
  });

  it('50-host full mesh: 1 search + 50 modifies, verified, no-op re-run in one search, remove clears it', async () => {
    const hosts = names('FM', 50);
    await seedComputers(admin, dc, hosts);
    const applied = await executeReport(settings(hosts), connection(), { kind: 'apply' });
    expect(applied).toMatchObject({ ok: true, changed: 50, operations: { searches: 1, modifies: 50 } });
    expect(
      applied.outcomes.every(
        (outcome) => outcome.status === 'changed' && 'added' in outcome && outcome.added.length === 196,
      ),
    ).toBe(true);
    for (const host of ['FM01', 'FM25', 'FM50']) {
      const view = await sambaToolShow(dc, host);
      expect(view.allowedToDelegateTo).toHaveLength(196);
      expect(sorted(view.allowedToDelegateTo)).toEqual(sorted(expectedValues(host, hosts)));
      expect(view).toMatchObject({ trustedToAuthForDelegation: true, trustedForDelegation: false });
    }
    expect(await verifyReport(settings(hosts), connection())).toMatchObject({
      ok: true,
      operations: { searches: 1, modifies: 0 },
    });
    expect(await executeReport(settings(hosts), connection(), { kind: 'apply' })).toMatchObject({
      changed: 0,
      operations: { searches: 1, modifies: 0 },
    });
    const removed = await executeReport(settings(hosts), connection(), { kind: 'remove', resetFlags: true });
    expect(removed).toMatchObject({ ok: true, changed: 50, operations: { searches: 1, modifies: 50 } });
    expect(await sambaToolShow(dc, 'FM17')).toEqual({
      trustedForDelegation: false,
      trustedToAuthForDelegation: false,
      allowedToDelegateTo: [],
    });
    const after = await verifyReport(settings(hosts), connection());
    expect(after.ok).toBe(false);
    expect(after.gaps).toHaveLength(50);
  });

  it('a value already present in other casing is not added again; remove takes it too', async () => {
    const hosts = names('CS', 2);
    await seedComputers(admin, dc, hosts);
    await admin.modify(computerDn(dc, 'CS01'), [
      change('add', 'msDS-AllowedToDelegateTo', [
        'CIFS/cs02',
        `microsoft virtual system migration service/CS02.LAB.TEST`,
      ]),
    ]);
    const applied = await executeReport(settings(hosts), connection(), { kind: 'apply' });
    const cs01 = applied.outcomes.find((outcome) => outcome.host === 'CS01');
    expect(cs01).toMatchObject({ status: 'changed', added: [`${MVSMS}/CS02`, `cifs/cs02.${dc.domain}`] });
    expect((await readObject('CS01')).values).toHaveLength(4);
    await executeReport(settings(hosts), connection(), { kind: 'remove', resetFlags: false });
    expect((await readObject('CS01')).values).toEqual([]);
  });

  it('a userAccountControl change between read and write: the swap fails, the host is re-read, the other change is kept', async () => {
    const hosts = names('CC', 3);
    await seedComputers(admin, dc, hosts);
    const directory: Directory = await connectDirectory({
      url: dc.url,
      bindUser: dc.bindUser,
      password: dc.password,
      caFile: dc.caFile,
    });
    try {
      const input = {
        hosts: parseHostNames(hosts).hosts,
        domain: dc.domain,
        baseDn: dc.baseDn,
        services: [MVSMS, 'cifs'],
      };
      const plan = await planDelegation(directory, input);
      // Someone else flips bits on CC02 and adds one of our values to CC03 after labctl read them.
      await admin.modify(computerDn(dc, 'CC02'), [
        change('replace', 'userAccountControl', [
          String(UF_WORKSTATION_TRUST_ACCOUNT | DONT_EXPIRE_PASSWORD | UF_TRUSTED_FOR_DELEGATION),
        ]),
      ]);
      await admin.modify(computerDn(dc, 'CC03'), [change('add', 'msDS-AllowedToDelegateTo', ['cifs/CC01'])]);
      const outcomes = await executePlan(directory, plan, { kind: 'apply' }, { concurrency: 1 });
      expect(
        outcomes.map((outcome) => [outcome.host, outcome.status, 'attempts' in outcome ? outcome.attempts : 0]),
      ).toEqual([
        ['CC01', 'changed', 1],
        ['CC02', 'changed', 2],
        ['CC03', 'changed', 2],
      ]);
      // 1 plan search + 2 re-reads; 3 modifies + 2 rejected ones.
      expect(directory.operations).toEqual({ searches: 3, modifies: 5 });
      expect((await readObject('CC02')).uac).toBe(
        UF_WORKSTATION_TRUST_ACCOUNT | DONT_EXPIRE_PASSWORD | UF_TRUSTED_TO_AUTH_FOR_DELEGATION,
      );
      expect(sorted((await readObject('CC03')).values)).toEqual(sorted(expectedValues('CC03', hosts)));
    } finally {
      await directory.close();
    }
  });

  it('a failure on one host leaves the others done and is reported; a re-run finishes', async () => {
    const hosts = names('FH', 3);
    await seedComputers(admin, dc, hosts);
    const directory = await connectDirectory({
      url: dc.url,
      bindUser: dc.bindUser,
      password: dc.password,
      caFile: dc.caFile,
    });
    try {
      const plan = await planDelegation(directory, {
        hosts: parseHostNames(hosts).hosts,
        domain: dc.domain,
        baseDn: dc.baseDn,
        services: ['cifs'],
      });
      await admin.del(computerDn(dc, 'FH02'));
      const outcomes = await executePlan(directory, plan, { kind: 'apply' });
      expect(outcomes.map((outcome) => outcome.status)).toEqual(['changed', 'failed', 'changed']);
      expect(outcomes[1]).toMatchObject({ code: 'LDAP_FAILED', error: expect.stringContaining('CN=FH02') });
    } finally {
      await directory.close();
    }
    await seedComputers(admin, dc, ['FH02']);
    const rerun = await executeReport(settings(hosts, { services: ['cifs'] }), connection(), { kind: 'apply' });
    expect(rerun.outcomes.map((outcome) => outcome.status)).toEqual(['unchanged', 'changed', 'unchanged']);
    expect((await verifyReport(settings(hosts, { services: ['cifs'] }), connection())).ok).toBe(true);
  });

  it('reports hosts missing from AD and hosts without the migration SPN, and configures the rest', async () => {
    await seedComputers(admin, dc, ['MH01', 'MH02']);
    await seedComputers(admin, dc, ['MH03'], { withHyperV: false });
    const report = await executeReport(settings(['MH01', 'MH02', 'MH03', 'MH404']), connection(), { kind: 'apply' });
    expect(report).toMatchObject({ ok: false, missing: ['MH404'], withoutMigrationSpn: ['MH03'], changed: 3 });
    expect((await readObject('MH01')).values.some((value) => value.includes('MH404') || value.includes('mh404'))).toBe(
      false,
    );
    const verified = await verifyReport(settings(['MH01', 'MH02', 'MH03', 'MH404']), connection());
    expect(verified).toMatchObject({ ok: false, missing: ['MH404'], gaps: [] });
  });

  it('refuses a wrong password, an unknown CA, plain LDAP; StartTLS on ldap:// works', async () => {
    const attempt = (extra: Partial<ConnectionSettings>) =>
      planReport(settings(['TH01', 'TH02']), connection(extra)).then(
        () => undefined,
        (error: unknown) => error,
      );
    const wrong = await attempt({ password: 'not-the-password' });
    expect(wrong).toBeInstanceOf(LabctlError);
    expect(wrong).toMatchObject({ code: 'LDAP_BIND_FAILED' });
    expect(String((wrong as Error).message)).not.toContain('not-the-password');
    expect(await attempt({ caFile: dc.otherCaFile })).toMatchObject({ code: 'LDAP_TLS_UNTRUSTED' });
    expect(await attempt({ caFile: undefined })).toMatchObject({ code: 'LDAP_TLS_UNTRUSTED' });
    expect(await attempt({ url: 'ldap://127.0.0.1:389', insecure: true })).toMatchObject({
      code: 'LDAP_STRONG_AUTH_REQUIRED',
    });
    expect(await attempt({ url: 'ldap://127.0.0.1:389' })).toBeUndefined();
  });
});
